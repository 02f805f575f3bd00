//! The one way traffic moves, shared by `set-weight` (every step, promote,
//! rollback) and `alarm-rollback`: check the slots that will get weight have
//! healthy instances, then write both records in one batch.

use tracing::{info, warn};

use crate::aws::{cloudmap, route53};
use crate::model::{Slot, Target, WeightReport};
use crate::plan::{self, weighted_slots, weights_for};
use crate::runtime::Context;
use crate::{time, CanaryError, Result};

/// Gives `slot` `percent` of the traffic and the other slot the rest.
/// A no-op (changed = false) when the records already say so.
pub async fn shift(
    ctx: &Context,
    target: &Target,
    slot: Slot,
    percent: u8,
    ttl: Option<u32>,
    wait_insync: bool,
) -> Result<WeightReport> {
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
        let (change_id, insync) = if wait_insync {
            let comment = format!("ecs-dns-canary: confirm {slot} {percent}%");
            let id =
                route53::write_weights(&ctx.clients.route53, target, desired, ttl, &comment).await?;
            let insync = route53::wait_insync(
                &ctx.clients.route53,
                &id,
                ctx.settings.insync_poll,
                ctx.settings.insync_timeout,
            )
            .await?;
            (Some(id), insync)
        } else {
            (None, false)
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
    let change_id =
        route53::write_weights(&ctx.clients.route53, target, desired, ttl, &comment).await?;
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
    })
}
