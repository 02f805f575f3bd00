//! The Step Functions calls the commands share: the client, turning names into
//! ARNs, and reading an execution's history (all of it, or only what is new).

use aws_config::{BehaviorVersion, Region};
use aws_sdk_sfn::Client;

use crate::args::GlobalArgs;
use crate::error::{CliError, Result};
use crate::event::Event;

/// Largest page GetExecutionHistory returns.
const HISTORY_PAGE: i32 = 1000;
/// Page size while polling: a second of a deployment adds a few events.
const POLL_PAGE: i32 = 25;

/// A client from the default chain, with `--region` / `--endpoint-url` applied.
pub async fn client(global: &GlobalArgs) -> Client {
    Client::new(&sdk_config(global).await)
}

/// The SDK configuration every client of the CLI shares (Step Functions,
/// and STS for `abort`'s "who").
pub async fn sdk_config(global: &GlobalArgs) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &global.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &global.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// The state machine ARN from `--state-machine-arn`, which may also be a name.
pub async fn state_machine_arn(client: &Client, given: Option<&str>) -> Result<String> {
    let given = given.ok_or(CliError::StateMachineMissing)?;
    if given.starts_with("arn:") {
        return Ok(given.to_string());
    }
    let mut pages = client.list_state_machines().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| CliError::from_sdk("ListStateMachines", e))?;
        if let Some(sm) = page.state_machines().iter().find(|sm| sm.name() == given) {
            return Ok(sm.state_machine_arn().to_string());
        }
    }
    Err(CliError::StateMachineNotFound(given.to_string()))
}

/// An execution ARN from an ARN, or from a name under the state machine:
/// `arn:…:stateMachine:M` + `N` → `arn:…:execution:M:N`.
pub fn execution_arn(execution: &str, state_machine_arn: Option<&str>) -> Result<String> {
    if execution.starts_with("arn:") {
        return Ok(execution.to_string());
    }
    let sm = state_machine_arn.ok_or(CliError::StateMachineMissing)?;
    match sm.split_once(":stateMachine:") {
        Some((head, machine)) => Ok(format!("{head}:execution:{machine}:{execution}")),
        None => Err(CliError::StateMachineNotFound(sm.to_string())),
    }
}

/// Resolves the `<execution>` argument, looking the state machine up only when needed.
pub async fn resolve_execution(
    client: &Client,
    execution: &str,
    state_machine: Option<&str>,
) -> Result<String> {
    if execution.starts_with("arn:") {
        return Ok(execution.to_string());
    }
    let sm = state_machine_arn(client, state_machine).await?;
    execution_arn(execution, Some(&sm))
}

fn history_error(arn: &str, err: CliError) -> CliError {
    match err.aws_code() {
        Some("ExecutionDoesNotExist") => CliError::ExecutionNotFound(arn.to_string()),
        _ => err,
    }
}

/// Every event, oldest first.
pub async fn all_events(client: &Client, arn: &str) -> Result<Vec<Event>> {
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .get_execution_history()
            .execution_arn(arn)
            .max_results(HISTORY_PAGE)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| history_error(arn, CliError::from_sdk("GetExecutionHistory", e)))?;
        events.extend(page.events().iter().map(Event::from_sdk));
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(sorted(events, 0))
}

/// The events after `last_seen`, oldest first. The first poll reads the
/// whole history; later ones ask for the newest first (`reverseOrder`) in
/// small pages and stop at the first event already seen, so polling a long
/// bake reads one short page a second, not the whole history. Stock moto
/// ignores `reverseOrder` and paging and answers the whole history in order
/// (the project's local AWS pages like AWS); the filter on ids makes both
/// answers give the same result.
pub async fn new_events(client: &Client, arn: &str, last_seen: i64) -> Result<Vec<Event>> {
    if last_seen == 0 {
        return all_events(client, arn).await;
    }
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .get_execution_history()
            .execution_arn(arn)
            .reverse_order(true)
            .max_results(POLL_PAGE)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| history_error(arn, CliError::from_sdk("GetExecutionHistory", e)))?;
        let reached_seen = page.events().iter().any(|e| e.id() <= last_seen);
        events.extend(page.events().iter().map(Event::from_sdk));
        match page.next_token() {
            Some(t) if !t.is_empty() && !reached_seen => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(sorted(events, last_seen))
}

fn sorted(mut events: Vec<Event>, after: i64) -> Vec<Event> {
    events.retain(|e| e.id > after);
    events.sort_by_key(|e| e.id);
    events.dedup_by_key(|e| e.id);
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_execution_arns_under_the_state_machine() -> Result<(), CliError> {
        let sm = "arn:aws:states:eu-west-1:123456789012:stateMachine:ecs-dns-canary";
        assert_eq!(
            execution_arn("web-v2-20261127T061800Z", Some(sm))?,
            "arn:aws:states:eu-west-1:123456789012:execution:ecs-dns-canary:web-v2-20261127T061800Z"
        );
        let full = "arn:aws-cn:states:cn-north-1:1:execution:m:n";
        assert_eq!(execution_arn(full, None)?, full);
        assert!(matches!(
            execution_arn("n", None),
            Err(CliError::StateMachineMissing)
        ));
        Ok(())
    }
}
