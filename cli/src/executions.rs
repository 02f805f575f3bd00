//! `list` and `history`: what ran, how long it took, and how it ended.

use std::io::Write;

use aws_sdk_sfn::types::ExecutionListItem;
use aws_sdk_sfn::Client;
use aws_smithy_types::DateTime;
use serde::Serialize;

use crate::args::StatusFilter;
use crate::error::{CliError, Result};
use crate::event::readable_cause;
use crate::history::{abbreviate, Ending, Visit};
use crate::output::print_json;
use crate::sfn::all_events;
use crate::time::{clock, date_time, rfc3339, seconds_between, secs_text};

/// One row of `list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRow {
    pub name: String,
    pub execution_arn: String,
    pub status: String,
    pub start_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_date: Option<String>,
    /// Until the stop, or until now for a running execution.
    pub duration_seconds: f64,
}

impl ExecutionRow {
    pub fn from_sdk(item: &ExecutionListItem, now: DateTime) -> Self {
        let start = *item.start_date();
        let stop = item.stop_date().copied();
        Self {
            name: item.name().to_string(),
            execution_arn: item.execution_arn().to_string(),
            status: item.status().as_str().to_string(),
            start_date: rfc3339(start),
            stop_date: stop.map(rfc3339),
            duration_seconds: seconds_between(start, stop.unwrap_or(now)).max(0.0),
        }
    }
}

/// Up to `max` executions, newest first (the order ListExecutions gives).
pub async fn list(
    client: &Client,
    sm: &str,
    status: Option<StatusFilter>,
    max: usize,
    now: DateTime,
) -> Result<Vec<ExecutionRow>> {
    let mut rows = Vec::new();
    let mut token: Option<String> = None;
    while rows.len() < max {
        let page_size = i32::try_from((max - rows.len()).min(1000)).unwrap_or(1000);
        let page = client
            .list_executions()
            .state_machine_arn(sm)
            .set_status_filter(status.map(StatusFilter::to_sdk))
            .max_results(page_size)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| {
                let err = CliError::from_sdk("ListExecutions", e);
                match err.aws_code() {
                    Some("StateMachineDoesNotExist") => {
                        CliError::StateMachineNotFound(sm.to_string())
                    }
                    _ => err,
                }
            })?;
        rows.extend(
            page.executions()
                .iter()
                .map(|i| ExecutionRow::from_sdk(i, now)),
        );
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    rows.truncate(max);
    Ok(rows)
}

pub fn print_list(out: &mut dyn Write, rows: &[ExecutionRow], json: bool) -> Result<()> {
    if json {
        return print_json(out, &rows);
    }
    if rows.is_empty() {
        writeln!(out, "no executions")?;
        return Ok(());
    }
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    writeln!(
        out,
        "{:<width$}  {:<9}  {:<20}  DURATION",
        "NAME", "STATUS", "STARTED"
    )?;
    for r in rows {
        let started =
            DateTime::from_str(&r.start_date, aws_smithy_types::date_time::Format::DateTime)
                .map(date_time)
                .unwrap_or_else(|_| r.start_date.clone());
        let running = if r.stop_date.is_none() { " so far" } else { "" };
        writeln!(
            out,
            "{:<width$}  {:<9}  {:<20}  {}{running}",
            r.name,
            r.status,
            started,
            secs_text(r.duration_seconds)
        )?;
    }
    Ok(())
}

/// What `history` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionHistory {
    pub name: String,
    pub execution_arn: String,
    pub status: String,
    pub start_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    pub states: Vec<Visit>,
    /// What the repair function did after the execution ended (its record
    /// in the repairs state machine), if it acted or left it for a reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair: Option<RepairRecord>,
    /// Present while the execution waits in **Wait for approval**: the
    /// exact commands that answer it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub awaiting_approval: Option<AwaitingApproval>,
}

/// A running execution's open approval wait.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AwaitingApproval {
    pub since: String,
    pub approve_command: String,
    pub reject_command: String,
}

/// The open approval wait of a RUNNING execution: its last state entered
/// is **Wait for approval**, not answered, timed out or failed yet.
pub fn awaiting_approval(status: &str, name: &str, states: &[Visit]) -> Option<AwaitingApproval> {
    let last = states.last()?;
    let waiting = status == "RUNNING"
        && last.state == canary_engine::plan::states::APPROVAL
        && last.exited_at.is_none()
        && last.result.is_none()
        && last.error.is_none();
    waiting.then(|| {
        let (approve_command, reject_command) = crate::history::approval_commands(name);
        AwaitingApproval {
            since: last.entered_at.clone(),
            approve_command,
            reject_command,
        }
    })
}

/// The repair function's outcome, read from its record: an execution of
/// the repairs state machine named like the deployment, input = the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepairRecord {
    pub recorded_at: String,
    pub record_arn: String,
    /// `restored`, `finished`, `left` or `failed` (the reason says what
    /// was left and what to do).
    pub action: String,
    pub reason: String,
    pub report: serde_json::Value,
}

/// The repair record of an execution, if any. Any failure to read it
/// (no repairs state machine, no permission) shows as no record.
pub async fn repair_record(
    client: &Client,
    state_machine_arn: &str,
    name: &str,
) -> Option<RepairRecord> {
    let repairs = canary_engine::aws::sfn::repairs_state_machine_arn(state_machine_arn);
    let (head, machine) = repairs.split_once(":stateMachine:")?;
    let record_arn = format!("{head}:execution:{machine}:{name}");
    let d = client
        .describe_execution()
        .execution_arn(&record_arn)
        .send()
        .await
        .ok()?;
    let report: serde_json::Value = serde_json::from_str(d.input()?).ok()?;
    let field = |k: &str| {
        report
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    Some(RepairRecord {
        recorded_at: rfc3339(*d.start_date()),
        record_arn,
        action: field("action"),
        reason: field("reason"),
        report,
    })
}

pub async fn history(client: &Client, arn: &str) -> Result<ExecutionHistory> {
    let d = client
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await
        .map_err(|e| {
            let err = CliError::from_sdk("DescribeExecution", e);
            match err.aws_code() {
                Some("ExecutionDoesNotExist") => CliError::ExecutionNotFound(arn.to_string()),
                _ => err,
            }
        })?;
    let events = all_events(client, arn).await?;
    let repair = match d.name() {
        Some(name) if d.status().as_str() != "RUNNING" => {
            repair_record(client, d.state_machine_arn(), name).await
        }
        _ => None,
    };
    let (states, ending): (Vec<Visit>, Option<Ending>) =
        crate::history::visits_of(&events, Some(arn));
    let start = *d.start_date();
    let stop = d.stop_date().copied();
    // DescribeExecution has the error and cause; the last event too (older
    // emulators leave the former out).
    let error = d
        .error()
        .map(str::to_string)
        .or_else(|| ending.as_ref().and_then(|e| e.error.clone()));
    let cause = d
        .cause()
        .map(readable_cause)
        .or_else(|| ending.as_ref().and_then(|e| e.cause.clone()));
    let name = d
        .name()
        .map(str::to_string)
        .unwrap_or_else(|| arn.rsplit(':').next().unwrap_or(arn).to_string());
    let status = d.status().as_str().to_string();
    let awaiting_approval = awaiting_approval(&status, &name, &states);
    Ok(ExecutionHistory {
        name,
        execution_arn: d.execution_arn().to_string(),
        status,
        start_date: rfc3339(start),
        stop_date: stop.map(rfc3339),
        duration_seconds: stop.map(|s| seconds_between(start, s)),
        error,
        cause,
        states,
        repair,
        awaiting_approval,
    })
}

/// Text: one block per state (Choice and Pass states only with `all`: their
/// effect shows in the state that follows). JSON: everything.
pub fn print_history(
    out: &mut dyn Write,
    h: &ExecutionHistory,
    json: bool,
    all: bool,
) -> Result<()> {
    if json {
        return print_json(out, h);
    }
    let parse = |s: &str| DateTime::from_str(s, aws_smithy_types::date_time::Format::DateTime).ok();
    let took = h
        .duration_seconds
        .map(|d| format!(", took {}", secs_text(d)))
        .unwrap_or_default();
    let started = parse(&h.start_date)
        .map(date_time)
        .unwrap_or_else(|| h.start_date.clone());
    writeln!(out, "{}  {}  started {started}{took}", h.name, h.status)?;
    writeln!(out, "{}", h.execution_arn)?;
    writeln!(out)?;
    const INDENT: &str = "            ";
    let plumbing =
        |v: &&Visit| matches!(v.state_type.as_str(), "Choice" | "Pass") && v.error.is_none();
    let hidden = if all {
        0
    } else {
        h.states.iter().filter(plumbing).count()
    };
    for v in h.states.iter().filter(|v| all || !plumbing(v)) {
        let at = parse(&v.entered_at)
            .map(clock)
            .unwrap_or_else(|| v.entered_at.clone());
        let mut facts = vec![v.state_type.clone()];
        if v.attempts > 1 {
            facts.push(format!("{} attempts", v.attempts));
        }
        match v.duration_seconds {
            Some(d) => facts.push(secs_text(d)),
            None if v.exited_at.is_none()
                && v.state_type != "Fail"
                && v.state_type != "Succeed" =>
            {
                facts.push("not finished".into())
            }
            None => {}
        }
        writeln!(out, "{at}    {}  ({})", v.state, facts.join(", "))?;
        if let Some(call) = &v.call {
            writeln!(out, "{INDENT}{}", abbreviate(call, 160))?;
        }
        if let Some(result) = &v.result {
            writeln!(out, "{INDENT}{}", abbreviate(result, 160))?;
        }
        match (&v.error, &v.cause) {
            (Some(e), Some(c)) => writeln!(out, "{INDENT}✗ {e}: {c}")?,
            (Some(e), None) => writeln!(out, "{INDENT}✗ {e}")?,
            _ => {}
        }
    }
    if hidden > 0 {
        writeln!(
            out,
            "({hidden} Choice and Pass states not shown; --all shows them)"
        )?;
    }
    writeln!(out)?;
    if let Some(a) = &h.awaiting_approval {
        writeln!(
            out,
            "waiting for approval since {}: approve with `{}`, or reject with `{}`",
            a.since, a.approve_command, a.reject_command
        )?;
    }
    match (&h.error, &h.cause) {
        (Some(e), Some(c)) => writeln!(out, "{}: {e}: {c}", h.status)?,
        (Some(e), None) => writeln!(out, "{}: {e}", h.status)?,
        _ => writeln!(out, "{}", h.status)?,
    }
    if let Some(r) = &h.repair {
        let parse =
            |s: &str| DateTime::from_str(s, aws_smithy_types::date_time::Format::DateTime).ok();
        let at = parse(&r.recorded_at)
            .map(clock)
            .unwrap_or_else(|| r.recorded_at.clone());
        writeln!(out)?;
        writeln!(out, "{at}    repair function: {}", r.action)?;
        writeln!(out, "{INDENT}{}", r.reason)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::load;
    use crate::history::visits;

    #[tokio::test]
    async fn history_shows_the_repair_after_the_execution_ending() -> Result<(), String> {
        let events = load("history-gate-alarm-rollback.json").await?;
        let (states, _) = visits(&events);
        let h = ExecutionHistory {
            name: "svc-v3".into(),
            execution_arn: "arn:aws:states:us-east-1:1:execution:ecs-dns-canary:svc-v3".into(),
            status: "ABORTED".into(),
            start_date: "2026-11-27T06:18:13.499Z".into(),
            stop_date: Some("2026-11-27T06:18:16.735Z".into()),
            duration_seconds: Some(3.236),
            error: Some("RolledBackOnAbort".into()),
            cause: Some("aborted by arn:aws:iam::1:user/alice during Check alarms: bad".into()),
            states,
            repair: Some(RepairRecord {
                recorded_at: "2026-11-27T06:18:31.000Z".into(),
                record_arn: "arn:aws:states:us-east-1:1:execution:ecs-dns-canary-repairs:svc-v3"
                    .into(),
                action: "restored".into(),
                reason: "all traffic went back to the blue slot".into(),
                report: serde_json::json!({"action": "restored"}),
            }),
            awaiting_approval: None,
        };
        let mut out = Vec::new();
        print_history(&mut out, &h, false, false).map_err(|e| e.to_string())?;
        let text = String::from_utf8(out).map_err(|e| e.to_string())?;
        let ending = text
            .find("ABORTED: RolledBackOnAbort")
            .ok_or_else(|| text.clone())?;
        let repair = text
            .find("repair function: restored")
            .ok_or_else(|| text.clone())?;
        assert!(ending < repair, "{text}");
        assert!(
            text.trim_end()
                .ends_with("all traffic went back to the blue slot"),
            "{text}"
        );
        let mut json = Vec::new();
        print_history(&mut json, &h, true, false).map_err(|e| e.to_string())?;
        let v: serde_json::Value = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
        assert_eq!(v["repair"]["action"], "restored");
        Ok(())
    }

    #[tokio::test]
    async fn history_text_hides_plumbing_states_unless_asked() -> Result<(), String> {
        let events = load("history-gate-alarm-rollback.json").await?;
        let (states, ending) = visits(&events);
        let h = ExecutionHistory {
            name: "svc-v3-alarm".into(),
            execution_arn:
                "arn:aws:states:us-east-1:123456789012:execution:ecs-dns-canary:svc-v3-alarm".into(),
            status: "FAILED".into(),
            start_date: "2026-11-27T06:18:13.499Z".into(),
            stop_date: Some("2026-11-27T06:18:16.735Z".into()),
            duration_seconds: Some(3.236),
            error: ending.as_ref().and_then(|e| e.error.clone()),
            cause: ending.as_ref().and_then(|e| e.cause.clone()),
            states,
            repair: None,
            awaiting_approval: None,
        };
        let text = |all| -> Result<String, String> {
            let mut out = Vec::new();
            print_history(&mut out, &h, false, all).map_err(|e| e.to_string())?;
            String::from_utf8(out).map_err(|e| e.to_string())
        };
        let short = text(false)?;
        assert!(
            short.starts_with("svc-v3-alarm  FAILED  started 2026-11-27 06:18:13Z, took 3.2 s\n"),
            "{short}"
        );
        assert!(!short.contains("(Choice"), "{short}");
        assert!(short.contains("Choice and Pass states not shown"));
        assert!(short.contains("✗ AlarmFiring: alarm firing: web-5xx was in ALARM"));
        assert!(short
            .trim_end()
            .ends_with("and the new task set ecs-svc/222 was deleted."));
        assert!(
            short.contains("\n\nFAILED: RolledBackOnAlarm: An alarm fired at step 2 of 3 (50%)")
        );
        let long = text(true)?;
        assert!(
            long.contains(
                "New task set ready?  (Choice, 0.00 s)\n            → Wait for new task set"
            ),
            "{long}"
        );
        let json = {
            let mut out = Vec::new();
            print_history(&mut out, &h, true, false).map_err(|e| e.to_string())?;
            serde_json::from_slice::<serde_json::Value>(&out).map_err(|e| e.to_string())?
        };
        let states = json
            .get("states")
            .and_then(|s| s.as_array())
            .ok_or("no states")?;
        assert!(states
            .iter()
            .any(|s| s.get("stateType") == Some(&serde_json::json!("Choice"))));
        Ok(())
    }

    #[test]
    fn list_text_is_a_table() -> Result<(), String> {
        let rows = vec![ExecutionRow {
            name: "web-v2-20261127T061800Z".into(),
            execution_arn: "arn".into(),
            status: "RUNNING".into(),
            start_date: "2026-11-27T06:18:00Z".into(),
            stop_date: None,
            duration_seconds: 125.0,
        }];
        let mut out = Vec::new();
        print_list(&mut out, &rows, false).map_err(|e| e.to_string())?;
        assert_eq!(
            String::from_utf8(out).map_err(|e| e.to_string())?,
            "NAME                     STATUS     STARTED               DURATION\n\
             web-v2-20261127T061800Z  RUNNING    2026-11-27 06:18:00Z  2 min 05 s so far\n"
        );
        Ok(())
    }
}
