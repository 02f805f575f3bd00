//! Step Functions: how the alarm-rollback function finds the deployments that
//! are baking and ends their bake. The bake task's own `TaskScheduled` event
//! carries its token, its alarms and its rollback plan: reading it is the
//! fallback when the bake registry ([`super::bakes`]) is not configured or
//! not reachable, and what the CLI's abort reads.

use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent, HistoryEventType};
use aws_sdk_sfn::Client;
use tracing::debug;

use super::{classify, error_code};
use crate::model::{CheckRequest, Deployment, SetWeightRequest, ShiftTimes};
use crate::{CanaryError, Result};
use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};

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
    /// The state that waits on the token: `Bake`, or `Wait for approval`
    /// (same function and payload; approve/reject/promote tell them apart).
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
    Shift { request: Box<SetWeightRequest> },
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
        .map_err(|e| {
            missing_execution(&e, execution_arn)
                .unwrap_or_else(|| classify("states:GetExecutionHistory", e))
        })?;
    // Newest first: with reverseOrder Step Functions returns the latest 25
    // events (GetExecutionHistory API Reference; the local AWS honours it
    // too, local/localaws/patches/sfn_history.py). Sorting by id keeps
    // `activity_of` correct whatever order a page comes in.
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
        if let Some(request) = bake_request(params) {
            let CheckRequest::Alarms {
                task_token: Some(token),
                ..
            } = &request
            else {
                return None;
            };
            let state_name = events
                .get(i + 1..)
                .unwrap_or_default()
                .iter()
                .find_map(|e| {
                    e.state_entered_event_details()
                        .map(|d| d.name().to_string())
                });
            return Some(OpenActivity::Bake(Box::new(OpenBake {
                task_token: token.clone(),
                request: request.clone(),
                state_name,
            })));
        }
        return shift_request(params).map(|request| OpenActivity::Shift {
            request: Box::new(request),
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

/// What the repair (and the CLI's abort) read of an execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionFacts {
    pub name: String,
    pub status: String,
    pub state_machine_arn: String,
    /// The execution input as given (None when Step Functions withheld it).
    pub input: Option<String>,
}

/// DescribeExecution, reduced.
pub async fn describe_execution(sfn: &Client, execution_arn: &str) -> Result<ExecutionFacts> {
    let out = sfn
        .describe_execution()
        .execution_arn(execution_arn)
        .send()
        .await
        .map_err(|e| {
            missing_execution(&e, execution_arn)
                .unwrap_or_else(|| classify("states:DescribeExecution", e))
        })?;
    Ok(ExecutionFacts {
        name: out.name().unwrap_or_default().to_string(),
        status: out.status().as_str().to_string(),
        state_machine_arn: out.state_machine_arn().to_string(),
        input: out.input().map(str::to_string),
    })
}

/// An execution's history reduced to what abort and repair decide on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HistoryFacts {
    /// Names of the states entered, oldest first.
    pub entered: Vec<String>,
    /// The plan create-taskset answered (`$.deployment` of the newest state
    /// output that carries one).
    pub plan: Option<Deployment>,
    /// Step 1's change (`$.firstShift`), when recorded.
    pub first_shift: Option<ShiftTimes>,
    /// The promotion's exact drain instant (`$.weights.drain.until` of
    /// **Promote new task set**'s output).
    pub promotion_drain_until: Option<String>,
}

/// Most events an execution can have (Step Functions quotas); the pages
/// read are bounded by it.
const HISTORY_PAGES: usize = 26;

/// Reads the whole history (pages of 1,000, bounded) and reduces it.
pub async fn history_facts(sfn: &Client, execution_arn: &str) -> Result<HistoryFacts> {
    let mut events: Vec<HistoryEvent> = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..HISTORY_PAGES {
        let out = sfn
            .get_execution_history()
            .execution_arn(execution_arn)
            .max_results(1000)
            .include_execution_data(true)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| {
                missing_execution(&e, execution_arn)
                    .unwrap_or_else(|| classify("states:GetExecutionHistory", e))
            })?;
        events.extend(out.events().iter().cloned());
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    events.sort_by_key(HistoryEvent::id);
    events.dedup_by_key(|e| e.id());
    Ok(facts_of(&events))
}

/// [`history_facts`] over events sorted oldest first.
pub fn facts_of(events: &[HistoryEvent]) -> HistoryFacts {
    let mut facts = HistoryFacts::default();
    for ev in events {
        if let Some(d) = ev.state_entered_event_details() {
            facts.entered.push(d.name().to_string());
        }
        let Some(d) = ev.state_exited_event_details() else {
            continue;
        };
        let Some(output) = d
            .output()
            .and_then(|o| serde_json::from_str::<serde_json::Value>(o).ok())
        else {
            continue;
        };
        if let Some(plan) = output
            .get("deployment")
            .and_then(|p| serde_json::from_value::<Deployment>(p.clone()).ok())
        {
            facts.plan = Some(plan);
        }
        if let Some(fs) = output
            .get("firstShift")
            .and_then(|p| serde_json::from_value::<ShiftTimes>(p.clone()).ok())
        {
            facts.first_shift = Some(fs);
        }
        if d.name() == crate::plan::states::PROMOTE {
            facts.promotion_drain_until = output
                .pointer("/weights/drain/until")
                .and_then(|u| u.as_str())
                .map(str::to_string);
        }
    }
    facts
}

/// The state machine that keeps the repair function's outcomes: by
/// default the deployment state machine's ARN + `-repairs`.
pub fn repairs_state_machine_arn(deployment_state_machine_arn: &str) -> String {
    format!("{deployment_state_machine_arn}-repairs")
}

/// Records a repair's outcome as an execution of the repairs state machine
/// named like the deployment (its input: the report), where the console
/// and `ecs-dns-canary history` find it. `Ok(false)` when a record already
/// exists (a redelivered event: the first outcome stays) or the repairs
/// state machine does not exist (logged).
pub async fn record_repair(
    sfn: &Client,
    repairs_state_machine_arn: &str,
    name: &str,
    report: &serde_json::Value,
) -> Result<bool> {
    match sfn
        .start_execution()
        .state_machine_arn(repairs_state_machine_arn)
        .name(name)
        .input(report.to_string())
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) => match error_code(&e) {
            Some("ExecutionAlreadyExists") => Ok(false),
            Some("StateMachineDoesNotExist") => {
                tracing::warn!(
                    state_machine = repairs_state_machine_arn,
                    "the repairs state machine does not exist: outcome not recorded"
                );
                Ok(false)
            }
            _ => Err(classify("states:StartExecution", e)),
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

/// `TargetNotFound` when a call names an execution that does not exist
/// (`ExecutionDoesNotExist`); other errors are left to `classify`.
fn missing_execution<E: ProvideErrorMetadata>(
    e: &SdkError<E>,
    execution_arn: &str,
) -> Option<CanaryError> {
    (error_code(e) == Some("ExecutionDoesNotExist"))
        .then(|| CanaryError::TargetNotFound(format!("execution {execution_arn} does not exist")))
}
