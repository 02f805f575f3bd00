//! The bake registry (issue 17 item 2) against mocked DynamoDB, Step
//! Functions, Route 53 and Cloud Map: check-health records a bake under each
//! alarm it watches; alarm-rollback finds the watchers with one Query by
//! alarm name (never listing executions nor reading histories), ignores
//! expired records, checks each token still waits, and falls back to the
//! history scan when the table cannot be read.

mod common;

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::delete_item::{DeleteItemInput, DeleteItemOutput};
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemInput, PutItemOutput};
use aws_sdk_dynamodb::operation::query::{QueryError, QueryInput, QueryOutput};
use aws_sdk_dynamodb::types::error::{ConditionalCheckFailedException, ResourceNotFoundException};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_route53::operation::change_resource_record_sets::ChangeResourceRecordSetsInput;
use aws_sdk_sfn::operation::send_task_failure::{SendTaskFailureInput, SendTaskFailureOutput};
use aws_sdk_sfn::operation::send_task_heartbeat::{
    SendTaskHeartbeatError, SendTaskHeartbeatOutput,
};
use aws_sdk_sfn::types::error::TaskTimedOut;
use aws_smithy_mocks::{mock, Rule};
use canary_engine::aws::bakes;
use canary_engine::handlers::{alarm_rollback, check_health};
use canary_engine::model::{CheckRequest, Slot, Weights};
use canary_engine::runtime::Settings;
use canary_engine::states::RollbackAction;
use common::*;
use serde_json::{json, Value};

const TABLE: &str = "canary-bakes";
const OTHER: &str = "payments-v7-20261127T101100Z";

fn registry_settings() -> Settings {
    Settings {
        bake_table: Some(TABLE.into()),
        ..settings()
    }
}

fn now() -> i64 {
    canary_engine::time::now().secs()
}

fn bake_payload(token: &str, alarms: &[&str]) -> Value {
    let mut p = fixture("check-health.bake.json");
    p["taskToken"] = json!(token);
    p["alarms"]["names"] = json!(alarms);
    p
}

/// A registry item as check-health writes it. A fixture that does not
/// serialise is a failed test.
#[allow(clippy::unwrap_used)]
fn item(
    alarm: &str,
    execution: &str,
    token: &str,
    expires_at: i64,
) -> HashMap<String, AttributeValue> {
    let request = serde_json::to_string(&bake_payload(token, &[alarm])).unwrap();
    HashMap::from([
        ("alarmName".into(), AttributeValue::S(alarm.into())),
        (
            "execution".into(),
            AttributeValue::S(sfn::execution_arn(execution)),
        ),
        ("taskToken".into(), AttributeValue::S(token.into())),
        ("request".into(), AttributeValue::S(request)),
        (
            "startedAt".into(),
            AttributeValue::N((expires_at - 300).to_string()),
        ),
        (
            "expiresAt".into(),
            AttributeValue::N(expires_at.to_string()),
        ),
    ])
}

fn query(items: Vec<HashMap<String, AttributeValue>>, seen: &Seen<QueryInput>) -> Rule {
    let seen = seen.clone();
    mock!(aws_sdk_dynamodb::Client::query).then_compute_output(move |req| {
        seen.push(req);
        QueryOutput::builder()
            .set_items(Some(items.clone()))
            .build()
    })
}

fn delete(seen: &Seen<DeleteItemInput>) -> Rule {
    let seen = seen.clone();
    mock!(aws_sdk_dynamodb::Client::delete_item).then_compute_output(move |req| {
        seen.push(req);
        DeleteItemOutput::builder().build()
    })
}

fn heartbeat_ok() -> Rule {
    mock!(aws_sdk_sfn::Client::send_task_heartbeat)
        .then_output(|| SendTaskHeartbeatOutput::builder().build())
}

fn send_failure(seen: &Seen<SendTaskFailureInput>) -> Rule {
    let seen = seen.clone();
    mock!(aws_sdk_sfn::Client::send_task_failure).then_compute_output(move |req| {
        seen.push(req);
        SendTaskFailureOutput::builder().build()
    })
}

fn alarm_event() -> Value {
    fixture("alarm-state-change.event.json")
}

#[tokio::test]
async fn one_query_finds_every_watcher_and_no_execution_is_listed() {
    let queries = Seen::new();
    let q = query(
        vec![
            item(ALARM, DEPLOYMENT_ID, "tok", now() + 300),
            item(ALARM, OTHER, "tok-2", now() + 300),
        ],
        &queries,
    );
    let deletes = Seen::new();
    let del = delete(&deletes);
    let changes = Seen::<ChangeResourceRecordSetsInput>::new();
    let change = r53::change(&changes);
    let failures = Seen::new();
    let fail = send_failure(&failures);
    let hb = heartbeat_ok();
    // No ListExecutions / GetExecutionHistory rule: such a call fails the test.
    let ctx = Mocks::new()
        .settings(registry_settings())
        .dynamodb(&[&q, &del])
        .sfn(&[&hb, &fail])
        .route53(&[&r53::list(r53::records(90, 10, 60)), &change])
        .instances(&cloudmap::healthy(Slot::Blue, OLD_DEPLOYMENT_ID, 2))
        .context();

    let r = alarm_rollback::run(&ctx, &alarm_event()).await.unwrap();

    assert_eq!(r.lookup.as_deref(), Some("registry"));
    assert_eq!(r.executions.len(), 2, "{r:?}");
    for a in &r.executions {
        assert_eq!(a.action, RollbackAction::RolledBack, "{a:?}");
        assert!(a.bake_ended);
        assert_eq!(
            a.weights,
            Some(Weights {
                blue: 100,
                green: 0
            })
        );
    }
    // One Query by the alarm's name, strongly consistent, expired filtered.
    let q = queries.only();
    assert_eq!(q.table_name(), Some(TABLE));
    assert_eq!(q.key_condition_expression(), Some("alarmName = :a"));
    assert_eq!(q.filter_expression(), Some("expiresAt > :now"));
    assert_eq!(q.consistent_read(), Some(true));
    let values = q.expression_attribute_values().unwrap();
    assert_eq!(values[":a"], AttributeValue::S(ALARM.into()));
    assert_eq!(hb.num_calls(), 2);
    let mut tokens: Vec<String> = failures
        .all()
        .iter()
        .map(|f| f.task_token().unwrap_or_default().to_string())
        .collect();
    tokens.sort();
    assert_eq!(tokens, ["tok", "tok-2"]);
    // Both records removed, each only if it still holds its token.
    let d = deletes.all();
    assert_eq!(d.len(), 2);
    assert!(d
        .iter()
        .all(|d| d.condition_expression() == Some("taskToken = :t")));
}

#[tokio::test]
async fn an_expired_record_the_service_still_returns_is_ignored() {
    // TTL deletion is eventual and the filter is the service's: an item past
    // its expiresAt that comes back anyway is not acted on.
    let q = query(
        vec![item(ALARM, DEPLOYMENT_ID, "tok", now() - 5)],
        &Seen::new(),
    );
    let hb = heartbeat_ok();
    let fail = send_failure(&Seen::new());
    let change = r53::change(&Seen::new());
    let ctx = Mocks::new()
        .settings(registry_settings())
        .dynamodb(&[&q])
        .sfn(&[&hb, &fail])
        .route53(&[&change])
        .context();

    let r = alarm_rollback::run(&ctx, &alarm_event()).await.unwrap();

    assert_eq!(r.lookup.as_deref(), Some("registry"));
    assert!(r.executions.is_empty(), "{r:?}");
    assert_eq!(
        (hb.num_calls(), fail.num_calls(), change.num_calls()),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn a_record_whose_bake_has_ended_moves_nothing_and_is_removed() {
    let q = query(
        vec![item(ALARM, DEPLOYMENT_ID, "tok", now() + 30)],
        &Seen::new(),
    );
    let deletes = Seen::new();
    let del = delete(&deletes);
    let hb = mock!(aws_sdk_sfn::Client::send_task_heartbeat).then_error(|| {
        SendTaskHeartbeatError::TaskTimedOut(
            TaskTimedOut::builder()
                .message("Provided task does not exist anymore")
                .meta(meta("TaskTimedOut"))
                .build(),
        )
    });
    let fail = send_failure(&Seen::new());
    let change = r53::change(&Seen::new());
    let ctx = Mocks::new()
        .settings(registry_settings())
        .dynamodb(&[&q, &del])
        .sfn(&[&hb, &fail])
        .route53(&[&change])
        .context();

    let r = alarm_rollback::run(&ctx, &alarm_event()).await.unwrap();

    assert_eq!(r.executions.len(), 1);
    assert_eq!(r.executions[0].action, RollbackAction::NotBaking);
    assert_eq!((fail.num_calls(), change.num_calls()), (0, 0));
    assert_eq!(deletes.only().table_name(), Some(TABLE));
}

#[tokio::test]
async fn an_unreachable_table_falls_back_to_the_history_scan() {
    let q = mock!(aws_sdk_dynamodb::Client::query).then_error(|| {
        QueryError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("Requested resource not found")
                .meta(meta("ResourceNotFoundException"))
                .build(),
        )
    });
    let changes = Seen::<ChangeResourceRecordSetsInput>::new();
    let change = r53::change(&changes);
    let failures = Seen::new();
    let fail = send_failure(&failures);
    let ctx = Mocks::new()
        .settings(registry_settings())
        .dynamodb(&[&q])
        .sfn(&[
            &sfn::list_running(&[DEPLOYMENT_ID]),
            &sfn::history(DEPLOYMENT_ID, sfn::baking(&bake_payload("tok", &[ALARM]))),
            &fail,
        ])
        .route53(&[&r53::list(r53::records(90, 10, 60)), &change])
        .instances(&cloudmap::healthy(Slot::Blue, OLD_DEPLOYMENT_ID, 2))
        .context();

    let r = alarm_rollback::run(&ctx, &alarm_event()).await.unwrap();

    assert_eq!(r.lookup.as_deref(), Some("historyScan"));
    assert_eq!(r.executions[0].action, RollbackAction::RolledBack);
    assert_eq!(failures.only().task_token(), Some("tok"));
}

fn put(seen: &Seen<PutItemInput>) -> Rule {
    let seen = seen.clone();
    mock!(aws_sdk_dynamodb::Client::put_item).then_compute_output(move |req| {
        seen.push(req);
        PutItemOutput::builder().build()
    })
}

#[tokio::test]
async fn a_bake_start_records_the_bake_under_each_alarm_until_its_end() {
    let puts = Seen::new();
    let p = put(&puts);
    let ctx = Mocks::new()
        .settings(registry_settings())
        .dynamodb(&[&p])
        .cloudwatch(&[
            &cw::describe_alarms(vec![cw::alarm(ALARM, "OK"), cw::alarm(OTHER_ALARM, "OK")]),
            &cw::history(ALARM, vec![], &Seen::new()),
            &cw::history(OTHER_ALARM, vec![], &Seen::new()),
        ])
        .context();
    let req: CheckRequest = serde_json::from_value(fixture("check-health.bake.json")).unwrap();
    let before = now();

    check_health::run(&ctx, &req).await.unwrap();

    let all = puts.all();
    let mut alarms: Vec<String> = all
        .iter()
        .map(|p| p.item().unwrap()["alarmName"].as_s().unwrap().clone())
        .collect();
    alarms.sort();
    assert_eq!(alarms, [ALARM, OTHER_ALARM]);
    for p in &all {
        let it = p.item().unwrap();
        assert_eq!(p.table_name(), Some(TABLE));
        assert!(it["execution"].as_s().unwrap().contains(":execution:"));
        assert!(it["taskToken"].as_s().unwrap().starts_with("AQCE"));
        let started: i64 = it["startedAt"].as_n().unwrap().parse().unwrap();
        let expires: i64 = it["expiresAt"].as_n().unwrap().parse().unwrap();
        assert!(started >= before);
        assert_eq!(expires - started, 300, "expires at the bake's end");
        // The record carries the bake's request: alarm-rollback needs the
        // rollback plan from it.
        let stored: CheckRequest = serde_json::from_str(it["request"].as_s().unwrap()).unwrap();
        assert_eq!(stored, req);
        assert_eq!(
            p.condition_expression(),
            Some("attribute_not_exists(alarmName) OR startedAt <= :started")
        );
    }
}

#[tokio::test]
async fn a_newer_record_of_the_same_execution_is_kept_and_a_failed_write_is_retryable() {
    let lost = mock!(aws_sdk_dynamodb::Client::put_item).then_error(|| {
        PutItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder()
                .message("The conditional request failed")
                .meta(meta("ConditionalCheckFailedException"))
                .build(),
        )
    });
    let ctx = Mocks::new().dynamodb(&[&lost]).context();
    let req: CheckRequest = serde_json::from_value(fixture("check-health.bake.json")).unwrap();
    let rec = bakes::BakeRecord {
        alarm_name: ALARM.into(),
        execution_arn: sfn::execution_arn(DEPLOYMENT_ID),
        task_token: "tok".into(),
        watch: bakes::Watch::Bake(Box::new(req.clone())),
        started_at: 100,
        expires_at: 400,
    };
    bakes::register(&ctx.clients.dynamodb, TABLE, &rec, &[ALARM.into()])
        .await
        .unwrap();

    let down = mock!(aws_sdk_dynamodb::Client::put_item)
        .then_error(|| PutItemError::generic(meta("ThrottlingException")));
    let ctx = Mocks::new().dynamodb(&[&down]).context();
    let e = bakes::register(&ctx.clients.dynamodb, TABLE, &rec, &[ALARM.into()]).await;
    assert_eq!(err_type(e), "Retryable");
}

#[test]
fn a_record_expires_at_the_end_of_its_bake() {
    assert_eq!(bakes::expiry(1_000, 300), 1_300);
    assert_eq!(bakes::expiry(1_000, 0), 1_000);
}

/// A guarded forward step's set-weight request as the state machine sends it.
fn step_request() -> Value {
    json!({
        "target": fixture("check-health.bake.json")["rollback"]["target"],
        "slot": "green",
        "percent": 50,
        "label": "step 2 of 3 (50%)",
        "alarms": {"names": [ALARM]},
        "since": "2026-11-27T10:15:00Z",
        "execution": sfn::execution_arn(DEPLOYMENT_ID),
        "rollback": fixture("check-health.bake.json")["rollback"],
    })
}

#[tokio::test]
async fn a_forward_step_in_flight_is_found_and_moved_back_without_a_token() {
    let mut it = item(ALARM, DEPLOYMENT_ID, "shift:1", now() + 120);
    it.insert("kind".into(), AttributeValue::S("shift".into()));
    it.insert(
        "request".into(),
        AttributeValue::S(step_request().to_string()),
    );
    let q = query(vec![it], &Seen::new());
    let deletes = Seen::new();
    let del = delete(&deletes);
    let changes = Seen::<ChangeResourceRecordSetsInput>::new();
    let change = r53::change(&changes);
    let hb = heartbeat_ok();
    let fail = send_failure(&Seen::new());
    let ctx = Mocks::new()
        .settings(registry_settings())
        .dynamodb(&[&q, &del])
        .sfn(&[&hb, &fail])
        .route53(&[&r53::list(r53::records(50, 50, 60)), &change])
        .instances(&cloudmap::healthy(Slot::Blue, OLD_DEPLOYMENT_ID, 2))
        .context();

    let r = alarm_rollback::run(&ctx, &alarm_event()).await.unwrap();

    assert_eq!(r.executions.len(), 1, "{r:?}");
    assert_eq!(r.executions[0].action, RollbackAction::RolledBack);
    assert_eq!(
        r.executions[0].weights,
        Some(Weights {
            blue: 100,
            green: 0
        })
    );
    // No token: nothing to check or fail.
    assert_eq!((hb.num_calls(), fail.num_calls()), (0, 0));
    assert_eq!(
        deletes.only().key().unwrap()["execution"],
        AttributeValue::S(sfn::execution_arn(DEPLOYMENT_ID))
    );
}

#[tokio::test]
async fn a_guarded_step_records_itself_for_its_call_and_removes_the_record() {
    use aws_sdk_route53::types::ChangeStatus;
    use canary_engine::handlers::set_weight;
    use canary_engine::model::SetWeightRequest;

    let puts = Seen::new();
    let p = put(&puts);
    let deletes = Seen::new();
    let del = delete(&deletes);
    let ctx = Mocks::new()
        .settings(registry_settings())
        .dynamodb(&[&p, &del])
        .cloudwatch(&[
            &cw::describe_alarms(vec![cw::alarm(ALARM, "OK")]),
            &cw::history(ALARM, vec![], &Seen::new()),
        ])
        .route53(&[
            &r53::list(r53::records(90, 10, 60)),
            &r53::change(&Seen::new()),
            &r53::get_change(ChangeStatus::Insync),
        ])
        .instances(&cloudmap::healthy(Slot::Blue, OLD_DEPLOYMENT_ID, 2))
        .instances(&cloudmap::healthy(Slot::Green, DEPLOYMENT_ID, 2))
        .context();
    let req: SetWeightRequest = serde_json::from_value(step_request()).unwrap();

    set_weight::run(&ctx, &req).await.unwrap();

    let put = puts.only();
    let it = put.item().unwrap();
    assert_eq!(it["kind"], AttributeValue::S("shift".into()));
    assert_eq!(it["alarmName"], AttributeValue::S(ALARM.into()));
    let token = it["taskToken"].as_s().unwrap().clone();
    assert!(token.starts_with("shift:"), "{token}");
    let d = deletes.only();
    assert_eq!(
        d.expression_attribute_values().unwrap()[":t"],
        AttributeValue::S(token)
    );
}
