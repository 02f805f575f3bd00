//! `alarm-rollback` against mocked Step Functions, Route 53 and Cloud Map:
//! an ALARM event ends every bake that watches the alarm (weights back in one
//! batch, then SendTaskFailure with AlarmFiring) and leaves the rest alone.

mod common;

use aws_sdk_route53::operation::change_resource_record_sets::ChangeResourceRecordSetsInput;
use aws_sdk_sfn::operation::get_execution_history::GetExecutionHistoryError;
use aws_sdk_sfn::operation::list_executions::ListExecutionsError;
use aws_sdk_sfn::operation::send_task_failure::{
    SendTaskFailureError, SendTaskFailureInput, SendTaskFailureOutput,
};
use aws_sdk_sfn::types::error::{StateMachineDoesNotExist, TaskTimedOut};
use aws_smithy_mocks::{mock, Rule};
use canary_engine::handlers::alarm_rollback;
use canary_engine::model::{AlarmRollbackReport, ExecutionAction, Slot, Weights};
use canary_engine::states::RollbackAction;
use common::r53::ChangeAction;
use common::*;
use serde_json::{json, Value};

/// The deployment baking and watching the alarm.
const WATCHER: &str = DEPLOYMENT_ID;
/// A deployment baking but gated by other alarms.
const BYSTANDER: &str = "payments-v7-20261127T101100Z";
/// A deployment between steps (not baking).
const WAITING: &str = "inventory-v3-20261127T100500Z";

/// The ALARM event of `orders-5xx` (fixture).
fn alarm_event() -> Value {
    fixture("alarm-state-change.event.json")
}

fn event_in(state: &str) -> Value {
    let mut ev = alarm_event();
    ev["detail"]["state"]["value"] = json!(state);
    ev["detail"]["previousState"]["value"] = json!("ALARM");
    ev
}

/// The bake's check-health payload (fixture) with this token and alarms.
fn bake_payload(token: &str, alarms: &[&str]) -> Value {
    let mut p = fixture("check-health.bake.json");
    p["taskToken"] = json!(token);
    p["alarms"]["names"] = json!(alarms);
    p
}

fn send_failure(seen: &Seen<SendTaskFailureInput>) -> Rule {
    let seen = seen.clone();
    mock!(aws_sdk_sfn::Client::send_task_failure).then_compute_output(move |req| {
        seen.push(req);
        SendTaskFailureOutput::builder().build()
    })
}

#[allow(
    clippy::panic,
    reason = "a test helper: a missing action fails the test"
)]
fn action<'a>(r: &'a AlarmRollbackReport, name: &str) -> &'a ExecutionAction {
    let arn = sfn::execution_arn(name);
    r.executions
        .iter()
        .find(|e| e.execution_arn == arn)
        .unwrap_or_else(|| panic!("no action reported for {name}: {r:?}"))
}

#[tokio::test]
async fn an_ok_event_does_nothing() {
    // No rule at all: any AWS call would panic the test.
    let ctx = Mocks::new().context();
    for state in ["OK", "INSUFFICIENT_DATA"] {
        let r = alarm_rollback::run(&ctx, &event_in(state)).await.unwrap();
        assert_eq!(r.alarm_name, ALARM);
        assert_eq!(r.state, state);
        assert!(r.executions.is_empty());
    }
}

#[tokio::test]
async fn an_alarm_rolls_back_the_bake_that_watches_it_and_leaves_the_others() {
    let changes = Seen::<ChangeResourceRecordSetsInput>::new();
    let change = r53::change(&changes);
    let failures = Seen::new();
    let fail = send_failure(&failures);
    let ctx = Mocks::new()
        .sfn(&[
            &sfn::list_running(&[WATCHER, BYSTANDER, WAITING]),
            &sfn::history(
                WATCHER,
                sfn::baking(&bake_payload("tok", &[ALARM, OTHER_ALARM])),
            ),
            &sfn::history(
                BYSTANDER,
                sfn::baking(&bake_payload("tok-b", &["payments-5xx"])),
            ),
            &sfn::history(WAITING, sfn::waiting()),
            &fail,
        ])
        // Step 1 of the canary: green has 10 %.
        .route53(&[&r53::list(r53::records(90, 10, 60)), &change])
        .instances(&cloudmap::healthy(Slot::Blue, OLD_DEPLOYMENT_ID, 2))
        .context();

    let r = alarm_rollback::run(&ctx, &alarm_event()).await.unwrap();

    assert_eq!((r.alarm_name.as_str(), r.state.as_str()), (ALARM, "ALARM"));
    assert_eq!(r.executions.len(), 3, "{r:?}");
    let w = action(&r, WATCHER);
    assert_eq!(w.action, RollbackAction::RolledBack, "{w:?}");
    assert!(w.bake_ended);
    assert_eq!(
        w.weights,
        Some(Weights {
            blue: 100,
            green: 0
        })
    );
    let b = action(&r, BYSTANDER);
    assert_eq!((b.action.as_str(), b.bake_ended), ("notWatching", false));
    let n = action(&r, WAITING);
    assert_eq!((n.action.as_str(), n.bake_ended), ("notBaking", false));

    // One batch: all traffic back to the live slot, the bake's TTL.
    assert_eq!(change.num_calls(), 1);
    assert_eq!(
        r53::upserts(&changes.only()),
        vec![
            (ChangeAction::Upsert, BLUE_SET_ID.into(), 100, 60),
            (ChangeAction::Upsert, GREEN_SET_ID.into(), 0, 60),
        ]
    );
    // Only the watcher's token is failed, with the name the ASL catches.
    let f = failures.only();
    assert_eq!(f.task_token(), Some("tok"));
    assert_eq!(f.error(), Some("AlarmFiring"));
    let cause = f.cause().unwrap_or_default();
    assert!(cause.contains(ALARM), "{cause}");
    assert!(cause.contains("blue"), "{cause}");
    assert!(cause.contains("step 1 of 3 (10%)"), "{cause}");
}

#[tokio::test]
async fn the_same_event_again_after_the_bake_ended_does_nothing() {
    // Retry (or a duplicate delivery): the history now ends with TaskFailed.
    let change = r53::change(&Seen::new());
    let fail = send_failure(&Seen::new());
    let ctx = Mocks::new()
        .sfn(&[
            &sfn::list_running(&[WATCHER]),
            &sfn::history(
                WATCHER,
                sfn::bake_failed(sfn::baking(&bake_payload("tok", &[ALARM]))),
            ),
            &fail,
        ])
        .route53(&[&r53::list(r53::records(100, 0, 60)), &change])
        .context();

    let r = alarm_rollback::run(&ctx, &alarm_event()).await.unwrap();

    assert_eq!(action(&r, WATCHER).action, RollbackAction::NotBaking);
    assert_eq!(change.num_calls(), 0);
    assert_eq!(fail.num_calls(), 0);
}

#[tokio::test]
async fn the_same_event_again_before_the_history_shows_it_writes_nothing() {
    // The weights are already back and the token is spent; the history still
    // shows the bake open. No second weight change, and no error either.
    let change = r53::change(&Seen::new());
    let fail = mock!(aws_sdk_sfn::Client::send_task_failure).then_error(|| {
        SendTaskFailureError::TaskTimedOut(
            TaskTimedOut::builder()
                .message("Task Timed Out: 'Provided task does not exist anymore'")
                .meta(meta("TaskTimedOut"))
                .build(),
        )
    });
    let ctx = Mocks::new()
        .sfn(&[
            &sfn::list_running(&[WATCHER]),
            &sfn::history(WATCHER, sfn::baking(&bake_payload("tok", &[ALARM]))),
            &fail,
        ])
        .route53(&[&r53::list(r53::records(100, 0, 60)), &change])
        .instances(&cloudmap::healthy(Slot::Blue, OLD_DEPLOYMENT_ID, 2))
        .context();

    let r = alarm_rollback::run(&ctx, &alarm_event()).await.unwrap();

    let w = action(&r, WATCHER);
    assert_eq!(w.action, RollbackAction::RolledBack);
    assert!(!w.bake_ended);
    assert_eq!(change.num_calls(), 0);
    assert_eq!(fail.num_calls(), 1);
}

#[tokio::test]
async fn a_failed_rollback_still_ends_the_bake() {
    // The live slot has no healthy instance: the weights stay, but the
    // execution must still leave the bake and take its own rollback path.
    let change = r53::change(&Seen::new());
    let failures = Seen::new();
    let ctx = Mocks::new()
        .sfn(&[
            &sfn::list_running(&[WATCHER]),
            &sfn::history(WATCHER, sfn::baking(&bake_payload("tok", &[ALARM]))),
            &send_failure(&failures),
        ])
        .route53(&[&r53::list(r53::records(90, 10, 60)), &change])
        .instances(&cloudmap::instances(
            Slot::Blue,
            cloudmap::of_task_set(OLD_DEPLOYMENT_ID, "blue", 0, 2),
        ))
        .context();

    let r = alarm_rollback::run(&ctx, &alarm_event()).await.unwrap();

    let w = action(&r, WATCHER);
    assert_eq!(w.action, RollbackAction::Failed);
    assert!(w.bake_ended);
    assert!(
        w.error
            .as_deref()
            .unwrap_or_default()
            .contains("no healthy instances"),
        "{w:?}"
    );
    assert_eq!(change.num_calls(), 0);
    assert_eq!(failures.only().error(), Some("AlarmFiring"));
}

#[tokio::test]
async fn a_bake_without_a_rollback_plan_is_ended_and_says_so() {
    let mut payload = bake_payload("tok", &[ALARM]);
    payload.as_object_mut().unwrap().remove("rollback");
    let failures = Seen::new();
    let ctx = Mocks::new()
        .sfn(&[
            &sfn::list_running(&[WATCHER]),
            &sfn::history(WATCHER, sfn::baking(&payload)),
            &send_failure(&failures),
        ])
        .context();

    let r = alarm_rollback::run(&ctx, &alarm_event()).await.unwrap();

    let w = action(&r, WATCHER);
    assert!(w.bake_ended);
    assert_eq!(failures.only().task_token(), Some("tok"));
    assert_ne!(w.action, RollbackAction::NotBaking, "{w:?}");
}

#[tokio::test]
async fn one_unreadable_history_does_not_stop_the_others() {
    let broken = mock!(aws_sdk_sfn::Client::get_execution_history)
        .match_requests(|r| r.execution_arn() == Some(sfn::execution_arn(WAITING).as_str()))
        .then_error(|| GetExecutionHistoryError::generic(meta("ThrottlingException")));
    let failures = Seen::new();
    let ctx = Mocks::new()
        .sfn(&[
            &sfn::list_running(&[WATCHER, WAITING]),
            &sfn::history(WATCHER, sfn::baking(&bake_payload("tok", &[ALARM]))),
            &broken,
            &send_failure(&failures),
        ])
        .route53(&[
            &r53::list(r53::records(90, 10, 60)),
            &r53::change(&Seen::new()),
        ])
        .instances(&cloudmap::healthy(Slot::Blue, OLD_DEPLOYMENT_ID, 2))
        .context();

    let r = alarm_rollback::run(&ctx, &alarm_event()).await.unwrap();

    assert_eq!(r.executions.len(), 2, "{r:?}");
    assert_eq!(action(&r, WATCHER).action, RollbackAction::RolledBack);
    let n = action(&r, WAITING);
    assert_eq!(n.action, RollbackAction::Failed);
    let error = n.error.as_deref().unwrap_or_default();
    assert!(error.contains("ThrottlingException"), "{error}");
    assert_eq!(failures.only().task_token(), Some("tok"));
}

#[tokio::test]
async fn no_running_execution_is_nothing_to_do() {
    let ctx = Mocks::new().sfn(&[&sfn::list_running(&[])]).context();
    let r = alarm_rollback::run(&ctx, &alarm_event()).await.unwrap();
    assert!(r.executions.is_empty());
}

// ------------------------------------------------------------------ errors

#[tokio::test]
async fn an_event_that_is_not_an_alarm_state_change_is_invalid_input() {
    let ctx = Mocks::new().context();
    let ecr_push = json!({
        "version": "0",
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "detail": {"action-type": "PUSH", "repository-name": "orders", "image-tag": "v2"}
    });
    assert_eq!(
        err_type(alarm_rollback::run(&ctx, &ecr_push).await),
        "InvalidInput"
    );
    let mut no_name = alarm_event();
    no_name["detail"]
        .as_object_mut()
        .unwrap()
        .remove("alarmName");
    assert_eq!(
        err_type(alarm_rollback::run(&ctx, &no_name).await),
        "InvalidInput"
    );
}

#[tokio::test]
async fn without_a_state_machine_arn_it_is_invalid_input() {
    let ctx = Mocks::new()
        .settings(canary_engine::runtime::Settings {
            state_machine_arn: None,
            ..settings()
        })
        .context();
    let e = err(alarm_rollback::run(&ctx, &alarm_event()).await);
    assert_eq!(e.error_type(), "InvalidInput");
    assert!(e.to_string().contains("STATE_MACHINE_ARN"), "{e}");
}

#[tokio::test]
async fn a_missing_state_machine_is_target_not_found() {
    let list = mock!(aws_sdk_sfn::Client::list_executions).then_error(|| {
        ListExecutionsError::StateMachineDoesNotExist(
            StateMachineDoesNotExist::builder()
                .message("State Machine Does Not Exist")
                .meta(meta("StateMachineDoesNotExist"))
                .build(),
        )
    });
    let ctx = Mocks::new().sfn(&[&list]).context();
    assert_eq!(
        err_type(alarm_rollback::run(&ctx, &alarm_event()).await),
        "TargetNotFound"
    );
}

#[tokio::test]
async fn step_functions_throttling_is_retryable() {
    let list = mock!(aws_sdk_sfn::Client::list_executions)
        .then_error(|| ListExecutionsError::generic(meta("ThrottlingException")));
    let ctx = Mocks::new().sfn(&[&list]).context();
    assert_eq!(
        err_type(alarm_rollback::run(&ctx, &alarm_event()).await),
        "Retryable"
    );
}

#[tokio::test]
async fn the_lambda_entry_point_answers_the_sample_report() {
    let ctx = Mocks::new()
        .sfn(&[
            &sfn::list_running(&[WATCHER, BYSTANDER]),
            &sfn::history(WATCHER, sfn::baking(&bake_payload("tok", &[ALARM]))),
            &sfn::history(
                BYSTANDER,
                sfn::baking(&bake_payload("tok-b", &["payments-5xx"])),
            ),
            &send_failure(&Seen::new()),
        ])
        .route53(&[
            &r53::list(r53::records(90, 10, 60)),
            &r53::change(&Seen::new()),
        ])
        .instances(&cloudmap::healthy(Slot::Blue, OLD_DEPLOYMENT_ID, 2))
        .context();
    let event = lambda_runtime::LambdaEvent::new(alarm_event(), Default::default());

    let r = alarm_rollback::handle(&ctx, event).await.unwrap();

    let sample: AlarmRollbackReport =
        serde_json::from_value(fixture("alarm-rollback-report.json")).unwrap();
    assert_eq!(r, sample);
}

/// Issue 12 item 4: the alarm fires while a forward step's set-weight is in
/// flight (weights propagating, no bake yet). alarm-rollback acts at once:
/// all traffic back, no token to fail (the step's own guard and the next
/// bake take the execution to its rollback path).
#[tokio::test]
async fn an_alarm_during_a_forward_step_rolls_back_at_once() {
    let changes = Seen::<ChangeResourceRecordSetsInput>::new();
    let change = r53::change(&changes);
    let rollback = json!({"target": target(), "slot": "blue", "ttlSeconds": 60});
    let step = json!({
        "target": target(),
        "slot": "green",
        "percent": 50,
        "ttlSeconds": 60,
        "label": "step 2 of 3 (50%)",
        "alarms": {"names": [ALARM], "insufficientData": "pass"},
        "since": "2026-11-27T10:15:00Z",
        "rollback": rollback,
    });
    let mut other = step.clone();
    other["alarms"]["names"] = json!(["payments-5xx"]);
    let ctx = Mocks::new()
        .sfn(&[
            &sfn::list_running(&[WATCHER, BYSTANDER]),
            &sfn::history(WATCHER, sfn::shifting(&step)),
            &sfn::history(BYSTANDER, sfn::shifting(&other)),
        ])
        .route53(&[&r53::list(r53::records(90, 10, 60)), &change])
        .instances(&cloudmap::healthy(Slot::Blue, OLD_DEPLOYMENT_ID, 2))
        .context();

    let r = alarm_rollback::run(&ctx, &alarm_event()).await.unwrap();

    let w = action(&r, WATCHER);
    assert_eq!(
        (w.action.as_str(), w.bake_ended),
        ("rolledBack", false),
        "{w:?}"
    );
    assert_eq!(
        w.weights,
        Some(Weights {
            blue: 100,
            green: 0
        })
    );
    let b = action(&r, BYSTANDER);
    assert_eq!(b.action, RollbackAction::NotWatching);
    // An unconditional UPSERT: the rollback always wins.
    assert_eq!(
        r53::upserts(&changes.only()),
        vec![
            (ChangeAction::Upsert, BLUE_SET_ID.into(), 100, 60),
            (ChangeAction::Upsert, GREEN_SET_ID.into(), 0, 60),
        ]
    );
}
