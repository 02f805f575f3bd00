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
    let current = route53::read_records(&ctx.clients.route53, target).await?;
    let ttl = ttl.unwrap_or(current.ttl);

    // A retry (or the state machine's rollback after alarm-rollback already
    // moved traffic) changes nothing, so it needs no health check.
    if current.weights == desired && current.ttl == ttl {
        info!(
            blue = desired.blue,
            green = desired.green,
            "weights already in place"
        );
        return Ok(WeightReport {
            weights: desired,
            ttl_seconds: ttl,
            changed: false,
            change_id: None,
            insync: true,
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
        changed_at: time::format(time::now()),
        primary_task_set: None,
        label: None,
    })
}
