//! `promote`: end the current bake now (SendTaskSuccess on the bake's task
//! token, found by the alarm-rollback function's own history reading,
//! [`canary_engine::aws::sfn::open_activity`]). The gate (**Check alarms**)
//! still runs; with `--full` the execution then goes to **Promote requested**
//! and 100 %, skipping the remaining steps. The token's output (who, when,
//! full) lands in `$.bake`, so the console and `history` show who did it.

use std::io::Write;

use aws_sdk_sfn::Client;
use canary_engine::aws::sfn as engine_sfn;
use serde::Serialize;

use crate::error::{CliError, Result, EXIT_NOT_ABORTED, EXIT_OK};
use crate::output::print_json;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PromoteOutcome {
    pub execution_arn: String,
    /// `bakeEnded` or `refused` (not baking: nothing changed).
    pub action: String,
    pub full: bool,
    pub caller: String,
    pub message: String,
}

impl PromoteOutcome {
    pub fn exit_code(&self) -> u8 {
        if self.action == "refused" {
            EXIT_NOT_ABORTED
        } else {
            EXIT_OK
        }
    }
}

/// The bake's token output: who ended the bake early, and whether the
/// remaining steps are skipped (`promoteFull`, read by **More steps?**).
pub fn token_output(caller: &str, full: bool, at: &str) -> serde_json::Value {
    serde_json::json!({ "promotedBy": caller, "promoteFull": full, "promotedAt": at })
}

pub async fn run(
    client: &Client,
    arn: &str,
    caller: &str,
    full: bool,
    at: &str,
) -> Result<PromoteOutcome> {
    let mut outcome = PromoteOutcome {
        execution_arn: arn.to_string(),
        action: "refused".into(),
        full,
        caller: caller.to_string(),
        message: String::new(),
    };
    let activity = engine_sfn::open_activity(client, arn)
        .await
        .map_err(|e| match e {
            canary_engine::CanaryError::TargetNotFound(_) => {
                CliError::ExecutionNotFound(arn.to_string())
            }
            e => CliError::Aws {
                operation: "GetExecutionHistory",
                code: Some(e.error_type().to_string()),
                message: e.to_string(),
            },
        })?;
    let Some(engine_sfn::OpenActivity::Bake(bake)) = activity else {
        outcome.message =
            "the execution is not baking: nothing to end now (try again during a bake)".into();
        return Ok(outcome);
    };
    if bake.state_name.as_deref() == Some(canary_engine::plan::states::APPROVAL) {
        // The approval wait is a bake by another name: its token is
        // answered by `approve` / `reject` only.
        outcome.message = format!(
            "the execution waits for approval, not baking: nothing changed (approve it with \
             `ecs-dns-canary approve {}`)",
            crate::watch::execution_name(arn)
        );
        return Ok(outcome);
    }
    let output = token_output(caller, full, at).to_string();
    match client
        .send_task_success()
        .task_token(&bake.task_token)
        .output(output)
        .send()
        .await
    {
        Ok(_) => {
            outcome.action = "bakeEnded".into();
            outcome.message = if full {
                "the bake ended; after the alarm gate the deployment goes to 100 % (remaining steps skipped)".into()
            } else {
                "the bake ended; the alarm gate runs, then the next step".into()
            };
        }
        Err(e) => {
            let err = CliError::from_sdk("SendTaskSuccess", e);
            match err.aws_code() {
                Some("TaskDoesNotExist") | Some("TaskTimedOut") | Some("InvalidToken") => {
                    outcome.message = "the bake had just ended: nothing changed".into();
                }
                _ => return Err(err),
            }
        }
    }
    Ok(outcome)
}

pub fn print(out: &mut dyn Write, o: &PromoteOutcome, json: bool) -> Result<()> {
    if json {
        return print_json(out, o);
    }
    match o.action.as_str() {
        "refused" => writeln!(out, "not promoted: {}", o.message)?,
        _ => writeln!(out, "promoted by {}: {}", o.caller, o.message)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_output_names_who_and_whether_the_steps_are_skipped() {
        let v = token_output("arn:aws:iam::1:user/alice", true, "2026-12-02T02:50:00Z");
        assert_eq!(v["promotedBy"], "arn:aws:iam::1:user/alice");
        assert_eq!(v["promoteFull"], true);
    }
}
