//! The sample inputs and outputs under `tests/fixtures/` are what the
//! functions really read and write: each deserializes into its type, and
//! serializing it again gives back the same JSON (no field silently dropped
//! or renamed).

mod common;

use canary_engine::handlers::alarm_rollback::parse_event;
use canary_engine::model::{
    AlarmRollbackReport, CheckReport, CheckRequest, CreateTaskSetRequest, DeleteReport,
    DeleteTaskSetRequest, Deployment, DeploymentRequest, GateReport, ReadinessReport,
    SetWeightRequest, Slot, WeightReport,
};
use canary_engine::plan;
use canary_engine::states::{RollbackAction, StateValue};
use common::{fixture, fixture_path};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// True when every member of `file` is in `back` with the same value.
/// `back` may hold more: a hand-written file leaves defaults out, and `None`
/// serializes as null.
fn contained(file: &Value, back: &Value) -> bool {
    match (file, back) {
        (Value::Object(f), Value::Object(b)) => f
            .iter()
            .all(|(k, v)| v.is_null() || b.get(k).is_some_and(|bv| contained(v, bv))),
        (Value::Array(f), Value::Array(b)) => {
            f.len() == b.len() && f.iter().zip(b).all(|(f, b)| contained(f, b))
        }
        (f, b) => f == b,
    }
}

/// Deserializes the fixture into `T`, serializes it back, and checks that
/// nothing was lost or renamed on the way.
#[allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test helper: a fixture that does not round-trip fails the test"
)]
fn round_trip<T>(name: &str) -> T
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let json = fixture(name);
    let value: T = serde_json::from_value(json.clone())
        .unwrap_or_else(|e| panic!("{name} does not deserialize: {e}"));
    let back = serde_json::to_value(&value).unwrap();
    assert!(
        contained(&json, &back),
        "{name}: serializing it back lost or changed a field:\n file: {json}\n back: {back}"
    );
    let twice: T = serde_json::from_value(back).unwrap();
    assert_eq!(twice, value, "{name}: second round trip differs");
    value
}

#[test]
fn deployment_request_is_a_valid_hand_written_input() {
    let r: DeploymentRequest = round_trip("deployment-request.json");
    plan::validate_request(&r).unwrap();
    // Hand-written: defaults left out are filled by create-taskset.
    assert_eq!(r.strategy.ttl_seconds, None);
}

#[test]
fn deployment_request_from_ecr_when_present() {
    // Produced by the EventBridge input transformer test (tests/infra).
    let name = "deployment-request-from-ecr.json";
    if !fixture_path(name).exists() {
        eprintln!("{name} not present; skipped");
        return;
    }
    let r: DeploymentRequest = round_trip(name);
    plan::validate_request(&r).unwrap();
    assert!(r.image.is_some() && r.task_definition.is_none());
}

#[test]
fn create_taskset_request() {
    let r: CreateTaskSetRequest = round_trip("create-taskset.request.json");
    let input: DeploymentRequest =
        serde_json::from_value(fixture("deployment-request.json")).unwrap();
    assert_eq!(
        r.request, input,
        "the state machine passes the execution input as is"
    );
}

#[test]
fn deployment() {
    let d: Deployment = round_trip("deployment.json");
    let req: CreateTaskSetRequest =
        serde_json::from_value(fixture("create-taskset.request.json")).unwrap();
    assert_eq!(d.id, req.deployment_id);
    assert_eq!(d.target, req.request.target);
    assert_eq!(d.alarms.names, req.request.alarms.names);
    assert_eq!(d.new_slot, d.live_slot.other());
    plan::validate_steps(&d.strategy.steps).unwrap();
    canary_engine::time::parse("createdAt", &d.created_at).unwrap();
}

#[test]
fn check_health_readiness_request_and_report() {
    let r: CheckRequest = round_trip("check-health.readiness.json");
    let d: Deployment = serde_json::from_value(fixture("deployment.json")).unwrap();
    let CheckRequest::Readiness {
        slot,
        task_set,
        waiting_since,
        timeout_seconds,
        ..
    } = r
    else {
        panic!("not a readiness check")
    };
    assert_eq!(
        (slot, task_set, waiting_since, timeout_seconds),
        (
            d.new_slot,
            d.new_task_set,
            d.created_at,
            d.strategy.ready_timeout_seconds
        )
    );
    let report: ReadinessReport = round_trip("readiness-report.json");
    assert!(report.ready);
    // check-health answers with the untagged CheckReport.
    let as_answer: CheckReport = serde_json::from_value(fixture("readiness-report.json")).unwrap();
    assert_eq!(as_answer, CheckReport::Readiness(report));
}

#[test]
fn check_health_alarm_gate_request_and_report() {
    let r: CheckRequest = round_trip("check-health.alarms.json");
    assert!(matches!(
        r,
        CheckRequest::Alarms {
            task_token: None,
            rollback: None,
            ..
        }
    ));
    let report: GateReport = round_trip("gate-report.json");
    let as_answer: CheckReport = serde_json::from_value(fixture("gate-report.json")).unwrap();
    assert_eq!(as_answer, CheckReport::Gate(report));
}

#[test]
fn check_health_bake_carries_token_and_rollback_plan() {
    let r: CheckRequest = round_trip("check-health.bake.json");
    let d: Deployment = serde_json::from_value(fixture("deployment.json")).unwrap();
    let CheckRequest::Alarms {
        alarms,
        task_token,
        rollback,
        ..
    } = &r
    else {
        panic!("not an alarms check")
    };
    assert_eq!(alarms, &d.alarms);
    assert!(task_token.as_deref().is_some_and(|t| !t.is_empty()));
    let plan = rollback.as_ref().unwrap();
    assert_eq!(plan.slot, d.live_slot);
    assert_eq!(plan.target, d.target);
    assert_eq!(plan.ttl_seconds, Some(d.strategy.original_ttl_seconds));
    // The alarm-rollback function finds it inside the TaskScheduled parameters.
    let parameters = serde_json::json!({
        "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:check-health",
        "Payload": fixture("check-health.bake.json"),
    });
    assert_eq!(
        canary_engine::aws::sfn::bake_request(&parameters.to_string()),
        Some(r)
    );
}

#[test]
fn set_weight_request_and_report() {
    let r: SetWeightRequest = round_trip("set-weight.request.json");
    plan::validate_target(&r.target).unwrap();
    let report: WeightReport = round_trip("weight-report.json");
    assert_eq!(
        report.weights,
        plan::weights_for(r.slot, r.percent).unwrap()
    );
}

#[test]
fn delete_taskset_request_and_report() {
    let r: DeleteTaskSetRequest = round_trip("delete-taskset.request.json");
    let d: Deployment = serde_json::from_value(fixture("deployment.json")).unwrap();
    assert_eq!(r.slot, d.live_slot);
    assert_eq!(Some(r.task_set.clone()), d.old_task_set);
    let report: DeleteReport = round_trip("delete-report.json");
    assert_eq!(report.task_set_id, r.task_set.id);
}

#[test]
fn alarm_state_change_event() {
    let ev = parse_event(&fixture("alarm-state-change.event.json")).unwrap();
    assert_eq!(ev.alarm_name, "orders-5xx");
    assert_eq!(ev.state, StateValue::Alarm);
    assert!(ev.reason.starts_with("Threshold Crossed"), "{}", ev.reason);
    assert_eq!(ev.time, "2026-11-27T10:19:02Z");
    let d: Deployment = serde_json::from_value(fixture("deployment.json")).unwrap();
    assert!(d.alarms.names.contains(&ev.alarm_name));
}

#[test]
fn alarm_rollback_report() {
    let r: AlarmRollbackReport = round_trip("alarm-rollback-report.json");
    assert_eq!(r.executions[0].action, RollbackAction::RolledBack);
    assert_eq!(
        r.executions[0].weights,
        Some(plan::weights_for(Slot::Blue, 100).unwrap())
    );
}

#[test]
fn a_typo_in_an_input_is_refused() {
    let mut v = fixture("set-weight.request.json");
    v["ttlSecond"] = serde_json::json!(60);
    assert!(serde_json::from_value::<SetWeightRequest>(v).is_err());
    let mut v = fixture("check-health.bake.json");
    v["rollback"]["slots"] = serde_json::json!("blue");
    assert!(serde_json::from_value::<CheckRequest>(v).is_err());
    // Also at the top level of the tagged check-health request.
    let mut v = fixture("check-health.alarms.json");
    v["sinse"] = serde_json::json!("2026-11-27T10:16:40.512Z");
    assert!(serde_json::from_value::<CheckRequest>(v).is_err());
    let mut v = fixture("check-health.readiness.json");
    v["timeoutSecond"] = serde_json::json!(600);
    assert!(serde_json::from_value::<CheckRequest>(v).is_err());
}

#[test]
fn the_round_trip_check_catches_a_field_an_output_type_ignores() {
    // Output types accept unknown fields, so only the comparison catches a typo.
    let mut v = fixture("gate-report.json");
    v["alarms"][0]["firedInWindw"] = serde_json::json!(true);
    let parsed: GateReport = serde_json::from_value(v.clone()).unwrap();
    assert!(!contained(&v, &serde_json::to_value(parsed).unwrap()));
}
