//! The one way traffic moves, shared by `set-weight` (every step, promote,
//! rollback) and `alarm-rollback`: check the slots that will get weight have
//! healthy instances, then write both records in one batch.
//!
//! A forward canary step carries a [`ForwardGuard`], and then no forward
//! write can land after a rollback write. The rollback writers
//! (alarm-rollback, the state machine's rollback) UPSERT unconditionally. A
//! guarded step (1) reads the records, (2) reads the alarms over its window
//! (from before its request), (3) writes only if the records are still what
//! (1) read (DELETE + CREATE in one batch, [`route53::write_weights_if`]).
//! alarm-rollback writes only after a watched alarm is in ALARM (time A).
//! If A is before (2), the step sees the alarm (state now, or its history
//! within the window) and writes nothing. If A is after (2), the rollback
//! write comes after A: either before (3), and the records differ from (1),
//! so (3) writes nothing (`WeightsChanged`); or after (3), and the rollback
//! overwrites the step. A retry of a step whose write was applied but whose
//! answer was lost runs (2) again, after A, and sees the alarm.

use std::time::Instant;

use tracing::{info, warn};

use crate::aws::{cloudmap, cloudwatch, route53};
use crate::model::{AlarmGate, Slot, Target, WeightReport};
use crate::plan::{self, weighted_slots, weights_for};
use crate::runtime::Context;
use crate::{time, CanaryError, Result};

/// The alarm gate a forward step checks before its conditional write.
#[derive(Debug, Clone, Copy)]
pub struct ForwardGuard<'a> {
    pub alarms: &'a AlarmGate,
    /// Start of the alarm window (RFC 3339).
    pub since: &'a str,
}

/// Gives `slot` `percent` of the traffic and the other slot the rest.
/// A no-op (changed = false) when the records already say so.
pub async fn shift(
    ctx: &Context,
    target: &Target,
    slot: Slot,
    percent: u8,
    ttl: Option<u32>,
    wait_insync: bool,
    guard: Option<ForwardGuard<'_>>,
) -> Result<WeightReport> {
    let since = guard.map(|g| time::parse("since", g.since)).transpose()?;
    let desired = weights_for(slot, percent)?;
    if let Some(ttl) = ttl {
        plan::validate_ttl("ttlSeconds", ttl)?;
    }
    // The alarm window of the step starts here, before anything is read or
    // written: an alarm that flips while the change propagates is inside it.
    let requested_at = time::format(time::now());
    let current = route53::read_records(&ctx.clients.route53, target).await?;
    let ttl = ttl.unwrap_or(current.ttl);

    // A retry (or the state machine's rollback after alarm-rollback already
    // moved traffic) moves nothing, so it needs no health check. But the
    // weights being in place says nothing about Route 53's servers: the
    // change that put them there (alarm-rollback's, or an earlier try whose
    // GetChange polling ran out) may still be PENDING, and a task set is
    // deleted a drain after INSYNC. So when INSYNC is asked for, the same
    // records are written again and that change is polled: Route 53 applies
    // the changes of a hosted zone in order (a second change while one is
    // processing is refused with PriorRequestNotComplete, Route 53 API
    // Reference, ChangeResourceRecordSets), and GetChange's INSYNC means
    // every Route 53 DNS server has the zone with this change (API
    // Reference, GetChange), so it also has every change before it.
    if current.weights == desired && current.ttl == ttl {
        info!(
            blue = desired.blue,
            green = desired.green,
            confirm = wait_insync,
            "weights already in place"
        );
        let (change_id, insync, insync_seconds) = if wait_insync {
            let comment = format!("ecs-dns-canary: confirm {slot} {percent}%");
            let written = Instant::now();
            let id = route53::write_weights(&ctx.clients.route53, target, desired, ttl, &comment)
                .await?;
            let insync = route53::wait_insync(
                &ctx.clients.route53,
                &id,
                ctx.settings.insync_poll,
                ctx.settings.insync_timeout,
            )
            .await?;
            (Some(id), insync, insync.then(|| whole_seconds(written)))
        } else {
            (None, false, None)
        };
        return Ok(WeightReport {
            weights: desired,
            ttl_seconds: ttl,
            changed: false,
            change_id,
            insync,
            requested_at,
            changed_at: time::format(time::now()),
            primary_task_set: None,
            label: None,
            drain: None,
            insync_seconds,
            rollback_bound: None,
        });
    }

    for s in weighted_slots(desired) {
        let health = cloudmap::slot_health(
            &ctx.clients.cloudmap,
            &target.slots.get(s).registry_arn,
            None,
        )
        .await?;
        if health.healthy == 0 {
            warn!(slot = %s, weight = desired.get(s), unhealthy = health.unhealthy, "refusing weight change");
            return Err(CanaryError::NoHealthyInstances(format!(
                "refusing to give the {s} slot {}% of {}: its Cloud Map service has no healthy \
                 instance ({} unhealthy); weights stay blue {} / green {}",
                desired.get(s),
                target.record_name,
                health.unhealthy,
                current.weights.blue,
                current.weights.green
            )));
        }
    }

    let comment = format!("ecs-dns-canary: {slot} {percent}%");
    // Set again just before the write (the guarded step reads the alarms
    // first): the measured INSYNC time counts Route 53 only.
    let mut written = Instant::now();
    let change_id = match (guard, since) {
        (Some(g), Some(since)) => {
            if !g.alarms.names.is_empty() {
                let observed = cloudwatch::observe_paced(
                    &ctx.clients.cloudwatch,
                    ctx.settings.cloudwatch,
                    &g.alarms.names,
                    since,
                )
                .await?;
                let verdict = plan::gate_verdict(&observed, g.alarms.insufficient_data);
                if let Some(failure) = verdict.failure {
                    warn!(%failure, "alarm before the weight change: not writing");
                    return Err(CanaryError::AlarmFiring(format!(
                        "{failure}; the step was not applied (weights stay blue {} / green {})",
                        current.weights.blue, current.weights.green
                    )));
                }
            }
            written = Instant::now();
            route53::write_weights_if(
                &ctx.clients.route53,
                target,
                current,
                desired,
                ttl,
                &comment,
            )
            .await?
        }
        _ => route53::write_weights(&ctx.clients.route53, target, desired, ttl, &comment).await?,
    };
    let insync = if wait_insync {
        route53::wait_insync(
            &ctx.clients.route53,
            &change_id,
            ctx.settings.insync_poll,
            ctx.settings.insync_timeout,
        )
        .await?
    } else {
        false
    };
    Ok(WeightReport {
        weights: desired,
        ttl_seconds: ttl,
        changed: true,
        change_id: Some(change_id),
        insync,
        requested_at,
        changed_at: time::format(time::now()),
        primary_task_set: None,
        label: None,
        drain: None,
        insync_seconds: insync.then(|| whole_seconds(written)),
        rollback_bound: None,
    })
}

/// Seconds since `from`, rounded up (a bound must not be shortened).
fn whole_seconds(from: Instant) -> u32 {
    let d = from.elapsed();
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}
