//! `abort`: roll a running deployment back now. Only Step Functions calls
//! (and STS GetCallerIdentity for "who"):
//!
//! - baking (the execution waits on the bake's task token, found in its
//!   history by the same code as the alarm-rollback function,
//!   [`canary_engine::aws::sfn::open_activity`]): SendTaskFailure with
//!   `Aborted`; the state machine's **Aborted by engineer** takes the
//!   rollback path at once and the execution ends `RolledBackOnAbort`;
//! - creating, readiness, shift or gate (no token): StopExecution with
//!   error `RolledBackOnAbort`; the `repair` function receives the ABORTED
//!   status change and restores the live slot and deletes the new task set;
//! - promoting or promoted, already rolling back, or ended: nothing changes
//!   (exit 5). The decision is [`canary_engine::plan::abort_action`].

use std::io::Write;

use aws_sdk_sfn::Client;
use canary_engine::aws::sfn as engine_sfn;
use canary_engine::plan::{self, AbortAction};
use serde::Serialize;

use crate::error::{CliError, Result, EXIT_NOT_ABORTED, EXIT_OK};
use crate::output::print_json;

/// Tries when the execution moves between our read and our write (a bake
/// that times out just before its token is failed).
const ATTEMPTS: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AbortOutcome {
    pub execution_arn: String,
    /// `tokenFailed` (the bake rolls back itself), `stopped` (the repair
    /// function rolls back) or `refused` (nothing changed).
    pub action: String,
    /// The state the execution was in.
    pub state: Option<String>,
    pub caller: String,
    pub reason: String,
    pub message: String,
}

impl AbortOutcome {
    pub fn exit_code(&self) -> u8 {
        if self.action == "refused" {
            EXIT_NOT_ABORTED
        } else {
            EXIT_OK
        }
    }
}

fn engine_error(operation: &'static str, e: canary_engine::CanaryError) -> CliError {
    CliError::Aws {
        operation,
        code: Some(e.error_type().to_string()),
        message: e.to_string(),
    }
}

/// The caller's ARN (STS GetCallerIdentity): who aborted.
pub async fn caller(sts: &aws_sdk_sts::Client) -> Result<String> {
    let out = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| CliError::from_sdk("GetCallerIdentity", e))?;
    Ok(out.arn().unwrap_or("unknown caller").to_string())
}

pub async fn run(client: &Client, arn: &str, caller: &str, reason: &str) -> Result<AbortOutcome> {
    let mut outcome = AbortOutcome {
        execution_arn: arn.to_string(),
        action: "refused".into(),
        state: None,
        caller: caller.to_string(),
        reason: reason.to_string(),
        message: String::new(),
    };
    for _ in 0..ATTEMPTS {
        let exec = engine_sfn::describe_execution(client, arn)
            .await
            .map_err(|e| match e {
                canary_engine::CanaryError::TargetNotFound(_) => {
                    CliError::ExecutionNotFound(arn.to_string())
                }
                e => engine_error("DescribeExecution", e),
            })?;
        if exec.status != "RUNNING" {
            outcome.message = format!("the execution is {}: nothing to abort", exec.status);
            return Ok(outcome);
        }
        let facts = engine_sfn::history_facts(client, arn)
            .await
            .map_err(|e| engine_error("GetExecutionHistory", e))?;
        let activity = engine_sfn::open_activity(client, arn)
            .await
            .map_err(|e| engine_error("GetExecutionHistory", e))?;
        let bake = match activity {
            Some(engine_sfn::OpenActivity::Bake(b)) => Some(b),
            _ => None,
        };
        outcome.state = facts.entered.last().cloned();
        let phase = plan::phase(&facts.entered);
        let cause = plan::abort_cause(caller, reason, outcome.state.as_deref());
        match plan::abort_action(&phase, bake.is_some()) {
            AbortAction::Refuse(why) => {
                outcome.message = why;
                return Ok(outcome);
            }
            AbortAction::FailToken => {
                let Some(bake) = bake else { continue };
                let ended = engine_sfn::fail_task(client, &bake.task_token, "Aborted", &cause)
                    .await
                    .map_err(|e| engine_error("SendTaskFailure", e))?;
                if ended {
                    outcome.action = "tokenFailed".into();
                    outcome.message = "the bake ended; the execution is rolling back all traffic \
                                       to the slot that was live and will delete the new task set \
                                       (RolledBackOnAbort)"
                        .into();
                    return Ok(outcome);
                }
            }
            AbortAction::Stop => {
                let stopped = stop_execution(client, arn, &cause).await?;
                if stopped {
                    outcome.action = "stopped".into();
                    outcome.message = "the execution was stopped (RolledBackOnAbort); the repair \
                                       function restores all traffic to the slot that was live \
                                       and deletes the new task set (see `history`)"
                        .into();
                    return Ok(outcome);
                }
            }
        }
    }
    outcome.message = format!(
        "the execution kept moving while aborting ({ATTEMPTS} tries): nothing changed; look at it with `history` and try again"
    );
    Ok(outcome)
}

/// StopExecution with `RolledBackOnAbort`; `Ok(false)` when it had ended.
async fn stop_execution(client: &Client, arn: &str, cause: &str) -> Result<bool> {
    match client
        .stop_execution()
        .execution_arn(arn)
        .error("RolledBackOnAbort")
        .cause(cause)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) => {
            let err = CliError::from_sdk("StopExecution", e);
            match err.aws_code() {
                Some("ExecutionDoesNotExist") => Err(CliError::ExecutionNotFound(arn.to_string())),
                Some("ExecutionNotRunning") | Some("InvalidExecutionState") => Ok(false),
                _ => Err(err),
            }
        }
    }
}

pub fn print(out: &mut dyn Write, o: &AbortOutcome, json: bool) -> Result<()> {
    if json {
        return print_json(out, o);
    }
    let state = o.state.as_deref().unwrap_or("-");
    match o.action.as_str() {
        "refused" => writeln!(out, "not aborted (in {state}): {}", o.message)?,
        _ => writeln!(
            out,
            "aborted in {state} by {}: {}\n{}",
            o.caller, o.reason, o.message
        )?,
    }
    Ok(())
}
