//! `alarm-rollback`: receives a `CloudWatch Alarm State Change` event and,
//! for every running deployment that is baking or shifting traffic (a
//! forward step's set-weight in flight) and watches that alarm, moves
//! all traffic back at once (the same [`traffic::shift`] as every rollback)
//! and fails the bake's task token so the execution takes its rollback path
//! now instead of at the end of the bake.
//!
//! Finding them: with `BAKE_TABLE` set, one DynamoDB `Query` by the alarm's
//! name returns the bakes that watch it (each bake records itself when it
//! starts: [`crate::aws::bakes`]); each is checked to still wait for its
//! token (one SendTaskHeartbeat) before anything moves. So the calls per
//! event grow with the bakes *watching* the alarm, not with the running
//! deployments. Without the table, or when the table cannot be read, the
//! function falls back to listing the running executions and reading each
//! one's history (1 + N Step Functions calls). A forward step's set-weight
//! in flight (`act_on_shift`) is found either way: set-weight records it in
//! the registry for the time of its call.

use lambda_runtime::{Diagnostic, LambdaEvent};
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::{respond, traffic};
use crate::aws::{bakes, sfn};
use crate::model::{AlarmRollbackReport, CheckRequest, ExecutionAction, SetWeightRequest};
use crate::runtime::Context;
use crate::states::{parse_alarm_state, RollbackAction, StateValue};
use crate::{time, CanaryError, Result};

pub async fn handle(
    ctx: &Context,
    event: LambdaEvent<serde_json::Value>,
) -> Result<AlarmRollbackReport, Diagnostic> {
    respond("alarm-rollback", run(ctx, &event.payload).await)
}

/// The fields of the EventBridge event we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmEvent {
    pub alarm_name: String,
    pub state: StateValue,
    pub reason: String,
    pub time: String,
}

pub fn parse_event(v: &serde_json::Value) -> Result<AlarmEvent> {
    let s = |p: &str| v.pointer(p).and_then(|x| x.as_str());
    if s("/source") != Some("aws.cloudwatch")
        || s("/detail-type") != Some("CloudWatch Alarm State Change")
    {
        return Err(CanaryError::invalid(
            "not a CloudWatch Alarm State Change event (source aws.cloudwatch)",
        ));
    }
    let alarm_name = s("/detail/alarmName")
        .ok_or_else(|| CanaryError::invalid("event has no detail.alarmName"))?
        .to_string();
    let state = s("/detail/state/value")
        .map(parse_alarm_state)
        .ok_or_else(|| CanaryError::invalid("event has no detail.state.value"))?;
    Ok(AlarmEvent {
        alarm_name,
        state,
        reason: s("/detail/state/reason").unwrap_or_default().to_string(),
        time: s("/time").unwrap_or_default().to_string(),
    })
}

pub async fn run(ctx: &Context, payload: &serde_json::Value) -> Result<AlarmRollbackReport> {
    let ev = parse_event(payload)?;
    let mut report = AlarmRollbackReport {
        alarm_name: ev.alarm_name.clone(),
        state: ev.state.as_str().to_string(),
        executions: Vec::new(),
        lookup: None,
    };
    if ev.state != StateValue::Alarm {
        info!(alarm = %ev.alarm_name, state = ev.state.as_str(), "not an ALARM transition: nothing to do");
        return Ok(report);
    }
    if let Some(table) = ctx.settings.bake_table.as_deref() {
        // One Query by alarm name, whatever the number of running
        // deployments (see `aws::bakes` for why this store).
        match bakes::watchers(
            &ctx.clients.dynamodb,
            table,
            &ev.alarm_name,
            time::now().secs(),
        )
        .await
        {
            Ok(records) => {
                info!(alarm = %ev.alarm_name, watchers = records.len(), "bake registry");
                report.lookup = Some("registry".into());
                let mut tasks = JoinSet::new();
                for rec in records {
                    let (ctx, ev, table) = (ctx.clone(), ev.clone(), table.to_string());
                    tasks.spawn(async move { act_on_record(&ctx, &ev, &table, rec).await });
                }
                collect(&mut tasks, &mut report).await;
                return Ok(report);
            }
            Err(e) => {
                // The fallback: the history scan below finds every bake
                // (1 + N Step Functions calls), as before the registry.
                warn!(alarm = %ev.alarm_name, error_type = e.error_type(), error = %e, "bake registry unreachable: scanning the running executions instead");
            }
        }
    }
    let sm = ctx.settings.state_machine_arn.as_deref().ok_or_else(|| {
        CanaryError::invalid("STATE_MACHINE_ARN is not set for the alarm-rollback function")
    })?;
    report.lookup = Some("historyScan".into());
    let executions = sfn::running_executions(&ctx.clients.sfn, sm).await?;
    let mut tasks = JoinSet::new();
    for arn in executions {
        let (ctx, ev) = (ctx.clone(), ev.clone());
        tasks.spawn(async move { act_on(&ctx, &ev, arn).await });
    }
    collect(&mut tasks, &mut report).await;
    Ok(report)
}

async fn collect(tasks: &mut JoinSet<ExecutionAction>, report: &mut AlarmRollbackReport) {
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(action) => report.executions.push(action),
            Err(e) => warn!(error = %e, "execution handler task failed"),
        }
    }
    report
        .executions
        .sort_by(|a, b| a.execution_arn.cmp(&b.execution_arn));
}

/// A bake found in the registry: checked to be still waiting for its token
/// (SendTaskHeartbeat), then ended like a bake found by the scan; its record
/// is removed once it no longer waits.
async fn act_on_record(
    ctx: &Context,
    ev: &AlarmEvent,
    table: &str,
    rec: bakes::BakeRecord,
) -> ExecutionAction {
    let mut action = ExecutionAction {
        execution_arn: rec.execution_arn.clone(),
        action: RollbackAction::NotBaking,
        weights: None,
        bake_ended: false,
        error: None,
    };
    let request = match &rec.watch {
        bakes::Watch::Bake(r) => r,
        bakes::Watch::Shift(step) => {
            // A forward step in flight: no token to check or fail; its own
            // guard stops it (see `act_on_shift`).
            let action = act_on_shift(ctx, ev, action, step).await;
            if action.action != RollbackAction::Failed {
                remove_record(ctx, table, &rec).await;
            }
            return action;
        }
    };
    match sfn::task_waiting(&ctx.clients.sfn, &rec.task_token).await {
        Ok(true) => {
            let bake = sfn::OpenBake {
                task_token: rec.task_token.clone(),
                request: (**request).clone(),
                state_name: None,
            };
            action = end_bake(ctx, ev, action, &bake).await;
        }
        Ok(false) => {
            info!(execution = %rec.execution_arn, "registered bake no longer waits: record removed");
        }
        Err(e) => {
            action.action = RollbackAction::Failed;
            action.error = Some(e.to_string());
            return action;
        }
    }
    if action.action != RollbackAction::Failed {
        remove_record(ctx, table, &rec).await;
    }
    action
}

/// Removes a handled record; it expires at its end anyway.
async fn remove_record(ctx: &Context, table: &str, rec: &bakes::BakeRecord) {
    if let Err(e) = bakes::remove(
        &ctx.clients.dynamodb,
        table,
        &rec.alarm_name,
        &rec.execution_arn,
        &rec.task_token,
    )
    .await
    {
        warn!(execution = %rec.execution_arn, error = %e, "bake record not removed");
    }
}

async fn act_on(ctx: &Context, ev: &AlarmEvent, execution_arn: String) -> ExecutionAction {
    let action = ExecutionAction {
        execution_arn: execution_arn.clone(),
        action: RollbackAction::NotBaking,
        weights: None,
        bake_ended: false,
        error: None,
    };
    let activity = match sfn::open_activity(&ctx.clients.sfn, &execution_arn).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            info!(execution = %execution_arn, "not baking nor shifting; its next gate check sees the alarm");
            return action;
        }
        Err(e) => {
            let mut action = action;
            action.action = RollbackAction::Failed;
            action.error = Some(e.to_string());
            return action;
        }
    };
    match activity {
        sfn::OpenActivity::Bake(b) => end_bake(ctx, ev, action, &b).await,
        sfn::OpenActivity::Shift { request, .. } => act_on_shift(ctx, ev, action, &request).await,
    }
}

/// A bake watching the alarm: all traffic back to the live slot, then its
/// token failed with `AlarmFiring`.
async fn end_bake(
    ctx: &Context,
    ev: &AlarmEvent,
    mut action: ExecutionAction,
    bake: &sfn::OpenBake,
) -> ExecutionAction {
    let execution_arn = action.execution_arn.clone();
    let CheckRequest::Alarms {
        alarms,
        rollback,
        label,
        ..
    } = &bake.request
    else {
        return action;
    };
    if !alarms.names.contains(&ev.alarm_name) {
        action.action = RollbackAction::NotWatching;
        return action;
    }
    let step = label.as_deref().unwrap_or("the bake");
    let mut cause = format!(
        "alarm {} went to ALARM during {step} ({}); the alarm-rollback function ended the bake",
        ev.alarm_name, ev.reason
    );
    if let Some(plan) = rollback {
        match traffic::shift(
            ctx,
            &plan.target,
            plan.slot,
            100,
            plan.ttl_seconds,
            false,
            None,
        )
        .await
        {
            Ok(w) => {
                info!(execution = %execution_arn, alarm = %ev.alarm_name, blue = w.weights.blue, green = w.weights.green, "traffic moved back");
                cause.push_str(&format!(
                    " and moved all traffic back to the {} slot",
                    plan.slot
                ));
                action.weights = Some(w.weights);
                action.action = RollbackAction::RolledBack;
            }
            Err(e) => {
                // The execution's own rollback path retries the weight change.
                warn!(execution = %execution_arn, error_type = e.error_type(), error = %e, "immediate rollback failed");
                action.action = RollbackAction::Failed;
                action.error = Some(e.to_string());
            }
        }
    } else {
        action.action = RollbackAction::BakeEnded;
    }
    match sfn::fail_task(&ctx.clients.sfn, &bake.task_token, "AlarmFiring", &cause).await {
        Ok(ended) => action.bake_ended = ended,
        Err(e) => {
            action.action = RollbackAction::Failed;
            action.error = Some(e.to_string());
        }
    }
    action
}

/// An execution whose forward step (set-weight) is in flight when a watched
/// alarm fires: move all traffic back now. The step cannot land after this
/// write (see [`traffic`]'s module comment): it fails `AlarmFiring` or
/// `WeightsChanged`, or it landed before and is overwritten here; the
/// execution then takes its rollback path at the bake's first look at the
/// alarms.
async fn act_on_shift(
    ctx: &Context,
    ev: &AlarmEvent,
    mut action: ExecutionAction,
    request: &SetWeightRequest,
) -> ExecutionAction {
    let (Some(alarms), Some(plan)) = (&request.alarms, &request.rollback) else {
        return action;
    };
    if !alarms.names.contains(&ev.alarm_name) {
        action.action = RollbackAction::NotWatching;
        return action;
    }
    match traffic::shift(
        ctx,
        &plan.target,
        plan.slot,
        100,
        plan.ttl_seconds,
        false,
        None,
    )
    .await
    {
        Ok(w) => {
            info!(execution = %action.execution_arn, alarm = %ev.alarm_name, blue = w.weights.blue, green = w.weights.green, "traffic moved back during a step");
            action.weights = Some(w.weights);
            action.action = RollbackAction::RolledBack;
        }
        Err(e) => {
            warn!(execution = %action.execution_arn, error_type = e.error_type(), error = %e, "immediate rollback failed");
            action.action = RollbackAction::Failed;
            action.error = Some(e.to_string());
        }
    }
    action
}
