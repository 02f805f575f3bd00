//! `ecs-dns-canary`, the engineers' command line: start a canary deployment
//! (an execution of the deployment state machine), watch it live, list
//! executions and read one's history.
//!
//! Follow a command through the modules: [`args`] (the command line),
//! [`deploy`] (file → checked input → StartExecution), [`watch`] (polling),
//! [`event`] and [`history`] (history events → story, pure), [`executions`]
//! (`list`, `history`), [`output`] (text, JSON, progress bar), [`time`]
//! (instants and durations as text), [`sfn`] (the
//! Step Functions calls they share) and [`error`] (exit codes).

pub mod abort;
pub mod approve;
pub mod args;
pub mod deploy;
pub mod error;
pub mod event;
pub mod executions;
pub mod history;
pub mod output;
pub mod plan;
pub mod promote;
pub mod sfn;
pub mod time;
pub mod watch;

#[cfg(test)]
mod fixtures;

use std::io::Write;

use args::{Cli, Command};
pub use error::{CliError, Result};

/// Runs one command; returns the exit code (see [`error`]).
pub async fn run(cli: Cli) -> Result<u8> {
    let config = sfn::sdk_config(&cli.global).await;
    let client = aws_sdk_sfn::Client::new(&config);
    let json = cli.global.json;
    let sm = cli.global.state_machine_arn.as_deref();
    let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
    let mut stdout = std::io::stdout();
    match &cli.command {
        Command::Deploy(args) => {
            let started = deploy::start(&client, sm, args, now).await?;
            let streaming = args.watch && json;
            // With --watch --json the start is the first line of the JSON
            // stream, tagged like the lines that follow.
            if streaming {
                let mut line = serde_json::to_value(&started).map_err(std::io::Error::other)?;
                if let Some(obj) = line.as_object_mut() {
                    obj.insert("kind".into(), "execution".into());
                }
                output::print_json_line(&mut stdout, &line)?;
            } else {
                deploy::print(&mut stdout, &started, json, args.dry_run)?;
            }
            stdout.flush()?;
            match (&started.execution_arn, args.watch) {
                (Some(arn), true) => watch::run(&client, arn, json, &args.follow).await,
                _ => Ok(error::EXIT_OK),
            }
        }
        Command::Watch(args) => {
            let arn = sfn::resolve_execution(&client, &args.execution, sm).await?;
            watch::run(&client, &arn, json, &args.follow).await
        }
        Command::List(args) => {
            let sm = sfn::state_machine_arn(&client, sm).await?;
            let rows = executions::list(&client, &sm, args.status, args.max, now).await?;
            executions::print_list(&mut stdout, &rows, json)?;
            Ok(error::EXIT_OK)
        }
        Command::History(args) => {
            let arn = sfn::resolve_execution(&client, &args.execution, sm).await?;
            let h = executions::history(&client, &arn).await?;
            executions::print_history(&mut stdout, &h, json, args.all)?;
            Ok(error::EXIT_OK)
        }
        Command::Plan(args) => {
            let report = plan::run(&cli.global, args, now).await?;
            plan::print(&mut stdout, &report, json)?;
            Ok(report.exit_code)
        }
        Command::Abort(args) => {
            let arn = sfn::resolve_execution(&client, &args.execution, sm).await?;
            let sts = aws_sdk_sts::Client::new(&config);
            let caller = abort::caller(&sts).await?;
            let outcome = abort::run(&client, &arn, &caller, &args.reason).await?;
            abort::print(&mut stdout, &outcome, json)?;
            Ok(outcome.exit_code())
        }
        Command::Promote(args) => {
            let arn = sfn::resolve_execution(&client, &args.execution, sm).await?;
            let sts = aws_sdk_sts::Client::new(&config);
            let caller = abort::caller(&sts).await?;
            let at = time::rfc3339(now);
            let outcome = promote::run(&client, &arn, &caller, args.full, &at).await?;
            promote::print(&mut stdout, &outcome, json)?;
            Ok(outcome.exit_code())
        }
        Command::Approve(args) => {
            let arn = sfn::resolve_execution(&client, &args.execution, sm).await?;
            let sts = aws_sdk_sts::Client::new(&config);
            let caller = abort::caller(&sts).await?;
            let at = time::rfc3339(now);
            let answer = approve::Answer::Approve { at };
            let outcome = approve::run(&client, &arn, &caller, answer).await?;
            approve::print(&mut stdout, &outcome, json)?;
            Ok(outcome.exit_code())
        }
        Command::Reject(args) => {
            let arn = sfn::resolve_execution(&client, &args.execution, sm).await?;
            let sts = aws_sdk_sts::Client::new(&config);
            let caller = abort::caller(&sts).await?;
            let answer = approve::Answer::Reject {
                reason: args.reason.clone(),
            };
            let outcome = approve::run(&client, &arn, &caller, answer).await?;
            approve::print(&mut stdout, &outcome, json)?;
            Ok(outcome.exit_code())
        }
    }
}
