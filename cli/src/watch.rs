//! `watch`: follow an execution by polling its history for new events, tell
//! the story as it happens and end with the execution's outcome.

use std::io::IsTerminal;
use std::time::Duration;

use aws_sdk_sfn::Client;

use crate::args::FollowArgs;
use crate::error::{CliError, Result, EXIT_EXECUTION_FAILED, EXIT_OK};
use crate::event::Outcome;
use crate::history::{Ending, Tracker};
use crate::output::{BarDisplay, JsonDisplay, LiveDisplay, PlainDisplay};
use crate::sfn::new_events;

/// Consecutive failed polls tolerated (after the SDK's own retries) before
/// giving up: a network blip should not end a watch of a 30-minute canary.
const MAX_POLL_FAILURES: u32 = 5;

/// Polls until the execution ends; returns how it ended.
pub async fn follow(
    client: &Client,
    arn: &str,
    poll: Duration,
    display: &mut dyn LiveDisplay,
) -> Result<Ending> {
    let mut tracker = Tracker::for_execution(arn);
    let mut last_seen = 0;
    let mut failures = 0;
    loop {
        match new_events(client, arn, last_seen).await {
            Ok(events) => {
                failures = 0;
                for e in &events {
                    last_seen = last_seen.max(e.id);
                    for note in tracker.ingest(e) {
                        display.note(&note)?;
                    }
                }
                display.progress(tracker.progress())?;
                if let Some(ending) = tracker.ending() {
                    display.finish(ending)?;
                    return Ok(ending.clone());
                }
            }
            Err(err @ CliError::ExecutionNotFound(_)) => return Err(err),
            Err(err) => {
                failures += 1;
                if failures >= MAX_POLL_FAILURES {
                    return Err(err);
                }
            }
        }
        tokio::time::sleep(poll).await;
    }
}

/// The display for this output: JSON lines, a bar on a terminal, or plain lines.
pub fn display(json: bool, follow: &FollowArgs) -> Box<dyn LiveDisplay> {
    if json {
        Box::new(JsonDisplay::new(std::io::stdout()))
    } else if !follow.plain && std::io::stdout().is_terminal() {
        Box::new(BarDisplay::new())
    } else {
        Box::new(PlainDisplay::new(std::io::stdout()))
    }
}

/// The documented exit code for an outcome: 0 only for SUCCEEDED.
pub fn exit_code(ending: &Ending) -> u8 {
    match ending.status {
        Outcome::Succeeded => EXIT_OK,
        Outcome::Failed | Outcome::TimedOut | Outcome::Aborted => EXIT_EXECUTION_FAILED,
    }
}

/// The `watch` command.
pub async fn run(client: &Client, arn: &str, json: bool, follow_args: &FollowArgs) -> Result<u8> {
    let mut display = display(json, follow_args);
    let ending = follow(
        client,
        arn,
        Duration::from_millis(follow_args.poll_ms),
        display.as_mut(),
    )
    .await?;
    Ok(exit_code(&ending))
}

/// The execution's name from its ARN (`…:execution:machine:name`).
pub fn execution_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}
