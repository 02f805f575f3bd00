//! `repair` against mocked Step Functions and Route 53: what it leaves
//! alone (other state machines, non-deployments, executions that passed
//! their own rollback, a world that moved on) makes no write at all.

#![allow(clippy::unwrap_used, reason = "test helpers build fixed SDK values")]

mod common;

use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use aws_sdk_sfn::types::{
    ExecutionStatus, HistoryEvent, HistoryEventType, StateEnteredEventDetails,
    StateExitedEventDetails,
};
use aws_smithy_mocks::{mock, Rule};
use aws_smithy_types::DateTime;
use canary_engine::handlers::repair;
use common::*;
use serde_json::{json, Value};

const NEWER: &str = "orders-v3-20261127T110000Z";

fn status_event(name: &str, status: &str, state_machine: &str) -> Value {
    json!({
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": ACCOUNT,
        "time": "2026-11-27T10:20:00Z",
        "region": REGION,
        "resources": [sfn::execution_arn(name)],
        "detail": {
            "executionArn": sfn::execution_arn(name),
            "stateMachineArn": state_machine,
            "name": name,
            "status": status,
            "startDate": 1_795_000_000_000_i64,
            "stopDate": 1_795_000_060_000_i64,
            "input": "{}",
        }
    })
}

fn describe(name: &str, status: ExecutionStatus, input: &str) -> Rule {
    let arn = sfn::execution_arn(name);
    let name = name.to_string();
    let input = input.to_string();
    mock!(aws_sdk_sfn::Client::describe_execution)
        .match_requests(move |r| r.execution_arn() == Some(arn.as_str()))
        .then_output(move || {
            DescribeExecutionOutput::builder()
                .execution_arn(sfn::execution_arn(&name))
                .state_machine_arn(STATE_MACHINE_ARN)
                .name(&name)
                .status(status.clone())
                .start_date(DateTime::from_secs(1_795_000_000))
                .input(&input)
                .build()
                .unwrap()
        })
}

fn request() -> String {
    fixture("deployment-request.json").to_string()
}

/// Oldest first: the states entered, with create-taskset's plan in the
/// first state's output.
fn states(names: &[&str]) -> Vec<HistoryEvent> {
    let plan = json!({ "deployment": fixture("deployment.json") }).to_string();
    let mut out = Vec::new();
    let mut id = 1;
    for name in names {
        out.push(
            HistoryEvent::builder()
                .id(id)
                .timestamp(DateTime::from_secs(1_795_000_000 + id))
                .r#type(HistoryEventType::TaskStateEntered)
                .state_entered_event_details(
                    StateEnteredEventDetails::builder()
                        .name(*name)
                        .input("{}")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        );
        id += 1;
        out.push(
            HistoryEvent::builder()
                .id(id)
                .timestamp(DateTime::from_secs(1_795_000_000 + id))
                .r#type(HistoryEventType::TaskStateExited)
                .state_exited_event_details(
                    StateExitedEventDetails::builder()
                        .name(*name)
                        .output(&plan)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        );
        id += 1;
    }
    out
}

#[tokio::test]
async fn another_state_machines_execution_is_not_read() {
    // No rule at all: any AWS call would panic the test.
    let ctx = Mocks::new().context();
    let ev = status_event(
        DEPLOYMENT_ID,
        "ABORTED",
        "arn:aws:states:us-east-1:123456789012:stateMachine:other",
    );
    let r = repair::run(&ctx, &ev).await.unwrap();
    assert_eq!(r.action, "left");
    assert!(r.reason.contains("stateMachine:other"), "{}", r.reason);
}

#[tokio::test]
async fn not_a_status_change_event_is_invalid_input() {
    let ctx = Mocks::new().context();
    let ev = fixture("alarm-state-change.event.json");
    assert_eq!(err_type(repair::run(&ctx, &ev).await), "InvalidInput");
}

#[tokio::test]
async fn an_execution_whose_input_is_not_a_deployment_is_left_alone() {
    let ctx = Mocks::new()
        .sfn(&[&describe(
            DEPLOYMENT_ID,
            ExecutionStatus::Aborted,
            r#"{"hello": "world"}"#,
        )])
        .context();
    let ev = status_event(DEPLOYMENT_ID, "ABORTED", STATE_MACHINE_ARN);
    let r = repair::run(&ctx, &ev).await.unwrap();
    assert_eq!(r.action, "left");
    assert!(r.reason.contains("not a deployment"), "{}", r.reason);
}

#[tokio::test]
async fn an_execution_that_passed_its_own_rollback_is_left_alone() {
    let ctx = Mocks::new()
        .sfn(&[
            &describe(DEPLOYMENT_ID, ExecutionStatus::Failed, &request()),
            &sfn::history(
                DEPLOYMENT_ID,
                states(&[
                    "Create task set in idle slot",
                    "Bake",
                    "Alarm fired",
                    "Roll back traffic",
                    "Drain new task set",
                    "Delete new task set",
                    "Deployment failed",
                ]),
            ),
        ])
        .context();
    let ev = status_event(DEPLOYMENT_ID, "FAILED", STATE_MACHINE_ARN);
    let r = repair::run(&ctx, &ev).await.unwrap();
    assert_eq!(r.action, "left");
    assert!(r.reason.contains("own rollback"), "{}", r.reason);
    assert_eq!(r.weights, None);
}

#[tokio::test]
async fn a_newer_deployment_of_the_service_running_means_nothing_is_touched() {
    // No Route 53 write and no ECS call is mocked: one would fail the test.
    let ctx = Mocks::new()
        .sfn(&[
            &describe(DEPLOYMENT_ID, ExecutionStatus::Aborted, &request()),
            &describe(NEWER, ExecutionStatus::Running, &request()),
            &sfn::history(
                DEPLOYMENT_ID,
                states(&["Create task set in idle slot", "Shift traffic", "Bake"]),
            ),
            &sfn::list_running(&[NEWER]),
        ])
        .route53(&[&r53::list(r53::records(90, 10, 60))])
        .context();
    let ev = status_event(DEPLOYMENT_ID, "ABORTED", STATE_MACHINE_ARN);
    let r = repair::run(&ctx, &ev).await.unwrap();
    assert_eq!(r.action, "left", "{r:?}");
    assert!(r.reason.contains(NEWER), "{}", r.reason);
}
