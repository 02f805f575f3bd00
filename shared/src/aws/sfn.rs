//! Step Functions: how the alarm-rollback function finds the deployments that
//! are baking and ends their bake. The bake task's own `TaskScheduled` event
//! carries its token, its alarms and its rollback plan: reading it is the
//! fallback when the bake registry ([`super::bakes`]) is not configured or
//! not reachable, and what the CLI's abort reads.

use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent, HistoryEventType};
use aws_sdk_sfn::Client;
use tracing::debug;

use super::{classify, error_code};
use crate::model::{CheckRequest, SetWeightRequest};
use crate::{CanaryError, Result};

/// Running executions of the state machine.
pub async fn running_executions(sfn: &Client, state_machine_arn: &str) -> Result<Vec<String>> {
    let mut arns = Vec::new();
    let mut token = None;
    loop {
        let out = sfn
            .list_executions()
            .state_machine_arn(state_machine_arn)
            .status_filter(ExecutionStatus::Running)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| match error_code(&e) {
                Some("StateMachineDoesNotExist") => CanaryError::TargetNotFound(format!(
                    "state machine {state_machine_arn} does not exist"
                )),
                _ => classify("states:ListExecutions", e),
            })?;
        arns.extend(
            out.executions()
                .iter()
                .map(|e| e.execution_arn().to_string()),
        );
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(arns);
        }
    }
}

/// What an open bake task carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenBake {
    pub task_token: String,
    pub request: CheckRequest,
    pub state_name: Option<String>,
}

/// What an execution is doing that an alarm event can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenActivity {
    /// Baking: waiting for its task token.
    Bake(Box<OpenBake>),
    /// A forward canary step's set-weight call is in flight (it carries its
    /// alarm guard and rollback plan). There is no token to fail: the call's
    /// own guard (alarm check + conditional write) makes it fail or be
    /// overwritten, and the bake after it sees the alarm.
    Shift {
        request: Box<SetWeightRequest>,
        state_name: Option<String>,
    },
}

/// Events that may follow a bake's `TaskScheduled` while it still waits for
/// its token: the invocation was started and submitted, nothing more.
fn still_waiting(t: &HistoryEventType) -> bool {
    matches!(
        t,
        HistoryEventType::TaskStarted | HistoryEventType::TaskSubmitted
    )
}

/// The execution's open bake, if its newest activity is a bake waiting for
/// its token.
pub async fn open_bake(sfn: &Client, execution_arn: &str) -> Result<Option<OpenBake>> {
    Ok(match open_activity(sfn, execution_arn).await? {
        Some(OpenActivity::Bake(b)) => Some(*b),
        _ => None,
    })
}

/// The execution's open activity: a bake waiting for its token, or a
/// guarded forward step's set-weight call in flight. Reads the history
/// newest first and stops at the first event that is not part of that wait.
pub async fn open_activity(sfn: &Client, execution_arn: &str) -> Result<Option<OpenActivity>> {
    let out = sfn
        .get_execution_history()
        .execution_arn(execution_arn)
        .reverse_order(true)
        .max_results(25)
        .include_execution_data(true)
        .send()
        .await
        .map_err(|e| match error_code(&e) {
            Some("ExecutionDoesNotExist") => {
                CanaryError::TargetNotFound(format!("execution {execution_arn} does not exist"))
            }
            _ => classify("states:GetExecutionHistory", e),
        })?;
    // Newest first. moto ignores reverseOrder and maxResults, so order by id
    // here rather than trust the service to.
    let mut events: Vec<&HistoryEvent> = out.events().iter().collect();
    events.sort_by_key(|e| std::cmp::Reverse(e.id()));
    Ok(activity_of(&events, execution_arn))
}

/// [`open_activity`] over events sorted newest first.
pub fn activity_of(events: &[&HistoryEvent], execution_arn: &str) -> Option<OpenActivity> {
    for (i, ev) in events.iter().enumerate() {
        let t = ev.r#type();
        if still_waiting(t) {
            continue;
        }
        if *t != HistoryEventType::TaskScheduled {
            debug!(
                execution = execution_arn,
                event = t.as_str(),
                "not baking or shifting"
            );
            return None;
        }
        let params = ev
            .task_scheduled_event_details()
            .map(|d| d.parameters())
            .unwrap_or_default();
        let state_name = events
            .get(i + 1..)
            .unwrap_or_default()
            .iter()
            .find_map(|e| {
                e.state_entered_event_details()
                    .map(|d| d.name().to_string())
            });
        if let Some(request) = bake_request(params) {
            let CheckRequest::Alarms {
                task_token: Some(token),
                ..
            } = &request
            else {
                return None;
            };
            return Some(OpenActivity::Bake(Box::new(OpenBake {
                task_token: token.clone(),
                request: request.clone(),
                state_name,
            })));
        }
        return shift_request(params).map(|request| OpenActivity::Shift {
            request: Box::new(request),
            state_name,
        });
    }
    None
}

/// The set-weight request inside a `lambda:invoke` task's parameters, if it
/// is a guarded forward step (alarms and a rollback plan).
pub fn shift_request(parameters: &str) -> Option<SetWeightRequest> {
    let v: serde_json::Value = serde_json::from_str(parameters).ok()?;
    let payload = v.get("Payload").cloned().unwrap_or(v);
    let r = serde_json::from_value::<SetWeightRequest>(payload).ok()?;
    (r.alarms.is_some() && r.rollback.is_some()).then_some(r)
}

/// The check-health request inside a `lambda:invoke.waitForTaskToken` task's
/// parameters (`{"FunctionName": ..., "Payload": {...}}`), if it is a bake.
pub fn bake_request(parameters: &str) -> Option<CheckRequest> {
    let v: serde_json::Value = serde_json::from_str(parameters).ok()?;
    let payload = v.get("Payload").cloned().unwrap_or(v);
    match serde_json::from_value::<CheckRequest>(payload).ok()? {
        r @ CheckRequest::Alarms {
            task_token: Some(_),
            ..
        } => Some(r),
        _ => None,
    }
}

/// Fails a waiting task. `Ok(false)` when the task no longer waits (it timed
/// out, finished, or the token was already used): nothing left to end.
pub async fn fail_task(sfn: &Client, token: &str, error: &str, cause: &str) -> Result<bool> {
    match sfn
        .send_task_failure()
        .task_token(token)
        .error(error)
        .cause(cause)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) => match error_code(&e) {
            Some("TaskDoesNotExist") | Some("TaskTimedOut") | Some("InvalidToken") => Ok(false),
            _ => Err(classify("states:SendTaskFailure", e)),
        },
    }
}

/// Whether a task still waits for this token: `SendTaskHeartbeat`, which
/// ends nothing. It answers `TaskDoesNotExist` / `TaskTimedOut` /
/// `InvalidToken` once the task has ended (Step Functions API Reference,
/// SendTaskHeartbeat). The bake registry's records are checked with it
/// before anything is moved: a record may outlive its bake by a moment (a
/// bake ended by SendTaskSuccess, or by its timeout within the second).
pub async fn task_waiting(sfn: &Client, token: &str) -> Result<bool> {
    match sfn.send_task_heartbeat().task_token(token).send().await {
        Ok(_) => Ok(true),
        Err(e) => match error_code(&e) {
            Some("TaskDoesNotExist") | Some("TaskTimedOut") | Some("InvalidToken") => Ok(false),
            _ => Err(classify("states:SendTaskHeartbeat", e)),
        },
    }
}
