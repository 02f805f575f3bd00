//! `check-health`: readiness of a new task set, and the alarm gate.

use lambda_runtime::{Diagnostic, LambdaEvent};
use tracing::info;

use super::{parse, respond};
use crate::aws::{bakes, cloudmap, cloudwatch, ecs};
use crate::model::{
    AlarmGate, CheckReport, CheckRequest, GateReport, ReadinessReport, Slot, Target, TaskSetRef,
};
use crate::plan::{self, gate_verdict, readiness, ReadinessInputs};
use crate::runtime::Context;
use crate::{time, CanaryError, Result};

pub async fn handle(
    ctx: &Context,
    event: LambdaEvent<serde_json::Value>,
) -> Result<CheckReport, Diagnostic> {
    let outcome = match parse::<CheckRequest>(event.payload) {
        Ok(req) => run(ctx, &req).await,
        Err(e) => Err(e),
    };
    respond("check-health", outcome)
}

pub async fn run(ctx: &Context, req: &CheckRequest) -> Result<CheckReport> {
    match req {
        CheckRequest::Readiness {
            target,
            slot,
            task_set,
            waiting_since,
            timeout_seconds,
        } => check_readiness(
            ctx,
            target,
            *slot,
            task_set,
            waiting_since,
            *timeout_seconds,
        )
        .await
        .map(CheckReport::Readiness),
        CheckRequest::Alarms {
            alarms,
            since,
            label,
            task_token,
            ..
        } => {
            // Recorded before the alarms are read: an alarm that fires
            // between this check and the bake's wait finds the record.
            register_bake(ctx, req).await?;
            check_alarms(ctx, alarms, since, label.as_deref(), task_token.is_some())
                .await
                .map(CheckReport::Gate)
        }
    }
}

/// At a bake's start (a task token, the execution and the bake's length in
/// the request, `BAKE_TABLE` set): records the bake under each alarm it
/// watches, expiring when the bake ends (see [`bakes`]). A write that fails
/// fails the check `Retryable` (the Bake state retries it), as a CloudWatch
/// read would: a bake that alarm-rollback cannot find would only be ended by
/// the gate after it.
async fn register_bake(ctx: &Context, req: &CheckRequest) -> Result<()> {
    let CheckRequest::Alarms {
        alarms,
        task_token: Some(token),
        execution: Some(execution),
        bake_seconds: Some(bake_seconds),
        ..
    } = req
    else {
        return Ok(());
    };
    let Some(table) = ctx.settings.bake_table.as_deref() else {
        return Ok(());
    };
    if alarms.names.is_empty() {
        return Ok(());
    }
    let started_at = time::now().secs();
    let record = bakes::BakeRecord {
        alarm_name: String::new(),
        execution_arn: execution.clone(),
        task_token: token.clone(),
        watch: bakes::Watch::Bake(Box::new(req.clone())),
        started_at,
        expires_at: bakes::expiry(started_at, *bake_seconds),
    };
    bakes::register(&ctx.clients.dynamodb, table, &record, &alarms.names).await?;
    info!(execution = %execution, alarms = alarms.names.len(), expires_at = record.expires_at, "bake registered");
    Ok(())
}

async fn check_readiness(
    ctx: &Context,
    target: &Target,
    slot: Slot,
    task_set: &TaskSetRef,
    waiting_since: &str,
    timeout_seconds: u32,
) -> Result<ReadinessReport> {
    plan::validate_target(target)?;
    let since = time::parse("waitingSince", waiting_since)?;
    let Some(info) = ecs::describe_task_set(
        &ctx.clients.ecs,
        &target.cluster,
        &target.service,
        &task_set.arn,
    )
    .await?
    else {
        // ECS reads are eventually consistent: a task set just created may
        // be MISSING for a moment. Poll again within the grace.
        let waited = time::seconds_between(since, time::now());
        return match plan::missing_task_set(waited) {
            Some(reason) => Ok(ReadinessReport {
                ready: false,
                task_set_id: task_set.id.clone(),
                stability_status: "MISSING".into(),
                desired_count: 0,
                running_count: 0,
                pending_count: 0,
                healthy_instances: 0,
                unhealthy_instances: 0,
                waited_seconds: waited,
                reason,
            }),
            None => Err(CanaryError::TaskSetNotFound(format!(
                "task set {} does not exist ({waited}s after it was created)",
                task_set.arn
            ))),
        };
    };
    let health = cloudmap::slot_health(
        &ctx.clients.cloudmap,
        &target.slots.get(slot).registry_arn,
        info.view.external_id.as_deref(),
    )
    .await?;
    let pending_registrations = cloudmap::pending_registrations(
        &ctx.clients.cloudmap,
        &target.slots.get(slot).registry_arn,
    )
    .await?;
    let inputs = ReadinessInputs {
        stability_status: info.stability_status.clone(),
        desired: info.desired,
        running: info.running,
        pending: info.pending,
        healthy_instances: health.healthy,
        unhealthy_instances: health.unhealthy,
        pending_registrations,
    };
    let verdict = readiness(&inputs);
    let ready = verdict.is_ready();
    let reason = verdict.into_reason();
    let waited = time::seconds_between(since, time::now());
    info!(task_set = %info.view.id, %slot, ready, waited, healthy = health.healthy, unhealthy = health.unhealthy, %reason, "readiness");
    if !ready && waited >= u64::from(timeout_seconds) {
        return Err(CanaryError::NotReady(format!(
            "task set {} in the {slot} slot not ready after {waited}s (limit {timeout_seconds}s): {reason}",
            info.view.id
        )));
    }
    Ok(ReadinessReport {
        ready,
        task_set_id: info.view.id,
        stability_status: inputs.stability_status.as_str().to_string(),
        desired_count: inputs.desired,
        running_count: inputs.running,
        pending_count: inputs.pending,
        healthy_instances: health.healthy,
        unhealthy_instances: health.unhealthy,
        waited_seconds: waited,
        reason,
    })
}

async fn check_alarms(
    ctx: &Context,
    gate: &AlarmGate,
    since: &str,
    label: Option<&str>,
    bake_start: bool,
) -> Result<GateReport> {
    plan::validate_alarms(gate)?;
    let since_t = time::parse("since", since)?;
    // Taken before anything is read: the next window starts here.
    let observed_at = time::format(time::now());
    let observed = if gate.names.is_empty() {
        Vec::new()
    } else {
        cloudwatch::observe_paced(
            &ctx.clients.cloudwatch,
            ctx.settings.cloudwatch,
            &gate.names,
            since_t,
        )
        .await?
    };
    let verdict = gate_verdict(&observed, gate.insufficient_data);
    info!(
        passed = verdict.passed,
        alarms = gate.names.len(),
        bake_start,
        label = label.unwrap_or(""),
        insufficient_data = ?verdict.insufficient_data,
        "alarm gate"
    );
    if let Some(failure) = verdict.failure {
        let at = label.map(|l| format!(" at {l}")).unwrap_or_default();
        return Err(CanaryError::AlarmFiring(format!("{failure}{at}")));
    }
    Ok(GateReport {
        passed: true,
        since: since.to_string(),
        observed_at,
        checked_at: time::format(time::now()),
        alarms: verdict.reports,
        insufficient_data: verdict.insufficient_data,
        label: label.map(str::to_string),
    })
}
