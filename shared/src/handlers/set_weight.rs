//! `set-weight`: one traffic step, the promotion, or the rollback.

use lambda_runtime::{Diagnostic, LambdaEvent};
use tracing::{info, warn};

use super::{parse, respond, traffic};
use crate::aws::bakes::Watch;
use crate::aws::{bakes, ecs};
use crate::model::{DrainReport, SetWeightRequest, WeightReport};
use crate::plan::{self, slot_of};
use crate::runtime::Context;
use crate::{time, CanaryError, Result};

pub async fn handle(
    ctx: &Context,
    event: LambdaEvent<serde_json::Value>,
) -> Result<WeightReport, Diagnostic> {
    let outcome = match parse::<SetWeightRequest>(event.payload) {
        Ok(req) => run(ctx, &req).await,
        Err(e) => Err(e),
    };
    respond("set-weight", outcome)
}

pub async fn run(ctx: &Context, req: &SetWeightRequest) -> Result<WeightReport> {
    plan::validate_target(&req.target)?;
    plan::weights_for(req.slot, req.percent)?;
    if let Some(ttl) = req.ttl_seconds {
        plan::validate_ttl("ttlSeconds", ttl)?;
    }
    if let Some(d) = &req.drain {
        if d.slot == req.slot || req.percent != 100 {
            return Err(CanaryError::invalid(format!(
                "drain is for the slot that loses all its traffic: {} gets {}%",
                req.slot, req.percent
            )));
        }
    }
    let t = &req.target;
    let guard = match (&req.alarms, &req.since) {
        (Some(alarms), Some(since)) => {
            plan::validate_alarms(alarms)?;
            Some(traffic::ForwardGuard { alarms, since })
        }
        (None, None) => None,
        _ => {
            return Err(CanaryError::invalid(
                "alarms and since go together (the forward step's alarm guard)",
            ))
        }
    };

    // Check the task set to promote before anything changes: a definite "no"
    // (gone, or in the other slot) refuses the call. An ECS read that merely
    // failed must not hold traffic where it is (this is also the rollback's
    // call): the weights move, then the error is returned and a retry
    // promotes.
    let mut primary_error = None;
    let primary = match &req.mark_primary {
        None => None,
        Some(ts) => {
            match ecs::describe_task_set(&ctx.clients.ecs, &t.cluster, &t.service, &ts.arn).await {
                Ok(Some(info)) if slot_of(&t.slots, &info.view) == Some(req.slot) => Some(info),
                Ok(Some(_)) => {
                    return Err(CanaryError::invalid(format!(
                        "markPrimary: task set {} is not in the {} slot",
                        ts.id, req.slot
                    )))
                }
                Ok(None) => {
                    return Err(CanaryError::TaskSetNotFound(format!(
                        "task set {} does not exist",
                        ts.arn
                    )))
                }
                Err(e @ (CanaryError::Retryable(_) | CanaryError::AwsError(_))) => {
                    primary_error = Some(e);
                    None
                }
                Err(e) => return Err(e),
            }
        }
    };

    let step = register_step(ctx, req, guard.is_some()).await?;
    let shifted = traffic::shift(
        ctx,
        t,
        req.slot,
        req.percent,
        req.ttl_seconds,
        req.wait_insync.unwrap_or(true),
        guard,
    )
    .await;
    if let Some((table, record)) = step {
        unregister_step(ctx, &table, &record).await;
    }
    let mut report = shifted?;

    if let Some(e) = primary_error {
        return Err(e.with_context(&format!(
            "weights are in place (blue {} / green {}); the task set was not marked PRIMARY",
            report.weights.blue, report.weights.green
        )));
    }
    if let Some(info) = primary {
        if !info.view.status.is_primary() {
            ecs::mark_primary(&ctx.clients.ecs, &t.cluster, &t.service, &info.view.arn).await?;
            info!(task_set = %info.view.id, slot = %req.slot, "marked PRIMARY");
        }
        report.primary_task_set = Some(info.view.arn);
    }
    report.label = req.label.clone();
    // Issue 13: a change slower to be INSYNC than the bound assumed makes
    // the bound that slow (the drain needs no such help: it counts from
    // each change's own INSYNC instant).
    report.rollback_bound = req.rollback_bound.as_ref().map(|b| {
        let updated = match report.insync_seconds {
            Some(m) => plan::with_measured_insync(b, m),
            None => b.clone(),
        };
        if updated.seconds > b.seconds {
            warn!(
                insync_seconds = report.insync_seconds,
                before = b.seconds,
                seconds = updated.seconds,
                statement = %updated.statement,
                "Route 53 took longer to be INSYNC than the rollback bound assumed"
            );
        }
        updated
    });
    if let Some(d) = &req.drain {
        let requested = time::parse("requestedAt", &report.requested_at)?.secs();
        let ended = time::parse("changedAt", &report.changed_at)?.secs();
        let drain = plan::exact_drain(d, requested, ended, report.insync);
        let until = time::format(aws_smithy_types::DateTime::from_secs(drain.until()));
        let explain = drain.explain();
        info!(slot = %d.slot, %until, seconds = drain.seconds(), %explain, "drain computed");
        report.drain = Some(DrainReport {
            until,
            seconds: drain.seconds(),
            explain,
        });
    }
    info!(
        slot = %req.slot,
        percent = req.percent,
        blue = report.weights.blue,
        green = report.weights.green,
        changed = report.changed,
        label = req.label.as_deref().unwrap_or(""),
        "weights in place"
    );
    Ok(report)
}

/// A guarded forward step (alarms and a rollback plan, the execution given,
/// `BAKE_TABLE` set) records itself in the bake registry for the time of
/// its call, so an alarm event finds it by name and moves traffic back at
/// once. Expires after the longest INSYNC wait plus a minute. A write that
/// fails fails the step `Retryable` before anything changed.
async fn register_step(
    ctx: &Context,
    req: &SetWeightRequest,
    guarded: bool,
) -> Result<Option<(String, bakes::BakeRecord)>> {
    let (Some(table), Some(execution), Some(alarms), Some(_)) = (
        ctx.settings.bake_table.as_deref(),
        req.execution.as_deref(),
        req.alarms.as_ref(),
        req.rollback.as_ref(),
    ) else {
        return Ok(None);
    };
    if !guarded || alarms.names.is_empty() {
        return Ok(None);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let started_at = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let record = bakes::BakeRecord {
        alarm_name: String::new(),
        execution_arn: execution.to_string(),
        task_token: format!("shift:{}", now.as_millis()),
        watch: bakes::Watch::Shift(Box::new(req.clone())),
        started_at,
        expires_at: bakes::expiry(
            started_at,
            ctx.settings.insync_timeout.as_secs().saturating_add(60),
        ),
    };
    bakes::register(&ctx.clients.dynamodb, table, &record, &alarms.names).await?;
    Ok(Some((table.to_string(), record)))
}

/// Removes the step's records once its call ended (best effort: they expire).
async fn unregister_step(ctx: &Context, table: &str, record: &bakes::BakeRecord) {
    let Watch::Shift(req) = &record.watch else {
        return;
    };
    for alarm in req.alarms.iter().flat_map(|a| a.names.iter()) {
        if let Err(e) = bakes::remove(
            &ctx.clients.dynamodb,
            table,
            alarm,
            &record.execution_arn,
            &record.task_token,
        )
        .await
        {
            tracing::warn!(alarm = %alarm, error = %e, "step record not removed");
        }
    }
}
