//! `approve` and `reject`: answer a deployment that waits in **Wait for
//! approval** (`strategy.approval`). That state is a bake by another name:
//! its token is found in the history by the alarm-rollback function's own
//! code ([`canary_engine::aws::sfn::open_activity`]), and only a token
//! whose state is the approval wait is answered
//! ([`canary_engine::plan::approval_answer`]): a bake's is left to
//! `promote` and `abort`. Only Step Functions calls (and STS for "who"):
//!
//! - approve: SendTaskSuccess with `{approvedBy, approvedAt}` (in
//!   `$.approval`, so the console and `history` show who): on to the shift;
//! - reject: SendTaskFailure with `Rejected` and a cause naming the reason
//!   and the caller: **Rejected by engineer** rolls back, `RolledBackOnReject`;
//! - not waiting for approval: nothing changes (exit 5).

use std::io::Write;

use aws_sdk_sfn::Client;
use canary_engine::aws::sfn as engine_sfn;
use canary_engine::plan::{self, ApprovalAnswer};
use serde::Serialize;

use crate::error::{CliError, Result, EXIT_NOT_ABORTED, EXIT_OK};
use crate::output::print_json;

/// What the engineer answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Go on; `at` is when (RFC 3339).
    Approve { at: String },
    /// Roll back, for `reason`.
    Reject { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApproveOutcome {
    pub execution_arn: String,
    /// `approved`, `rejected` or `refused` (nothing changed).
    pub action: String,
    /// The state the execution was in.
    pub state: Option<String>,
    pub caller: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub message: String,
}

impl ApproveOutcome {
    pub fn exit_code(&self) -> u8 {
        if self.action == "refused" {
            EXIT_NOT_ABORTED
        } else {
            EXIT_OK
        }
    }
}

/// The approval wait's token output: who approved, and when.
pub fn token_output(caller: &str, at: &str) -> serde_json::Value {
    serde_json::json!({ "approvedBy": caller, "approvedAt": at })
}

fn engine_error(arn: &str, operation: &'static str, e: canary_engine::CanaryError) -> CliError {
    match e {
        canary_engine::CanaryError::TargetNotFound(_) => {
            CliError::ExecutionNotFound(arn.to_string())
        }
        e => CliError::Aws {
            operation,
            code: Some(e.error_type().to_string()),
            message: e.to_string(),
        },
    }
}

pub async fn run(
    client: &Client,
    arn: &str,
    caller: &str,
    answer: Answer,
) -> Result<ApproveOutcome> {
    let mut outcome = ApproveOutcome {
        execution_arn: arn.to_string(),
        action: "refused".into(),
        state: None,
        caller: caller.to_string(),
        reason: match &answer {
            Answer::Reject { reason } => Some(reason.clone()),
            Answer::Approve { .. } => None,
        },
        message: String::new(),
    };
    let facts = engine_sfn::history_facts(client, arn)
        .await
        .map_err(|e| engine_error(arn, "GetExecutionHistory", e))?;
    let activity = engine_sfn::open_activity(client, arn)
        .await
        .map_err(|e| engine_error(arn, "GetExecutionHistory", e))?;
    let wait = match activity {
        Some(engine_sfn::OpenActivity::Bake(b)) => Some(b),
        _ => None,
    };
    outcome.state = facts.entered.last().cloned();
    let token_state = wait
        .as_ref()
        .map(|b| b.state_name.as_deref().unwrap_or("Bake"));
    match plan::approval_answer(&plan::phase(&facts.entered), token_state) {
        ApprovalAnswer::Refuse(why) => {
            outcome.message = why;
            return Ok(outcome);
        }
        ApprovalAnswer::Answer => {}
    }
    let Some(wait) = wait else {
        return Ok(outcome);
    };
    let ended = match &answer {
        Answer::Approve { at } => {
            let output = token_output(caller, at).to_string();
            match client
                .send_task_success()
                .task_token(&wait.task_token)
                .output(output)
                .send()
                .await
            {
                Ok(_) => true,
                Err(e) => {
                    let err = CliError::from_sdk("SendTaskSuccess", e);
                    match err.aws_code() {
                        Some("TaskDoesNotExist") | Some("TaskTimedOut") | Some("InvalidToken") => {
                            false
                        }
                        _ => return Err(err),
                    }
                }
            }
        }
        Answer::Reject { reason } => {
            let cause = plan::reject_cause(caller, reason);
            engine_sfn::fail_task(client, &wait.task_token, "Rejected", &cause)
                .await
                .map_err(|e| engine_error(arn, "SendTaskFailure", e))?
        }
    };
    if !ended {
        outcome.message = "the approval wait had just ended (timed out, answered, or an alarm \
                           rolled back): nothing changed; look at it with `history`"
            .into();
        return Ok(outcome);
    }
    match answer {
        Answer::Approve { .. } => {
            outcome.action = "approved".into();
            outcome.message = "the deployment goes on to its next step".into();
        }
        Answer::Reject { .. } => {
            outcome.action = "rejected".into();
            outcome.message = "the execution is rolling back all traffic to the slot that was \
                               live and will delete the new task set (RolledBackOnReject)"
                .into();
        }
    }
    Ok(outcome)
}

pub fn print(out: &mut dyn Write, o: &ApproveOutcome, json: bool) -> Result<()> {
    if json {
        return print_json(out, o);
    }
    let state = o.state.as_deref().unwrap_or("-");
    match (o.action.as_str(), &o.reason) {
        ("refused", _) => writeln!(out, "not answered (in {state}): {}", o.message)?,
        ("rejected", Some(reason)) => {
            writeln!(out, "rejected by {}: {reason}\n{}", o.caller, o.message)?
        }
        _ => writeln!(out, "approved by {}: {}", o.caller, o.message)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_output_names_who_approved() {
        let v = token_output("arn:aws:iam::1:user/alice", "2026-12-02T06:00:00Z");
        assert_eq!(v["approvedBy"], "arn:aws:iam::1:user/alice");
        assert_eq!(v["approvedAt"], "2026-12-02T06:00:00Z");
    }

    #[test]
    fn refused_is_exit_5_and_prints_why() -> Result<()> {
        let o = ApproveOutcome {
            execution_arn: "arn".into(),
            action: "refused".into(),
            state: Some("Bake".into()),
            caller: "me".into(),
            reason: None,
            message: "the execution is in Bake, not waiting for approval".into(),
        };
        assert_eq!(o.exit_code(), EXIT_NOT_ABORTED);
        let mut buf = Vec::new();
        print(&mut buf, &o, false)?;
        assert!(String::from_utf8_lossy(&buf).starts_with("not answered (in Bake): "));
        Ok(())
    }
}
