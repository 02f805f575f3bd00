//! Route 53: the two weighted CNAME records that are the traffic switch.
//! Every change writes both records in one `ChangeResourceRecordSets` batch,
//! so no resolver ever sees a half-applied change.

use std::time::{Duration, Instant};

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType,
};
use aws_sdk_route53::Client;
use tracing::{debug, info};

use super::{classify, error_code};
use crate::model::{Slot, Target, Weights};
use crate::plan::same_dns_name;
use crate::{CanaryError, Result};

/// The two records as they are now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordPair {
    pub weights: Weights,
    pub ttl: u32,
}

fn zone_id(target: &Target) -> &str {
    target
        .hosted_zone_id
        .strip_prefix("/hostedzone/")
        .unwrap_or(&target.hosted_zone_id)
}

/// Reads and checks both weighted records: both exist, are CNAMEs to their
/// slot's DNS name, carry a weight and share one TTL.
pub async fn read_records(r53: &Client, target: &Target) -> Result<RecordPair> {
    let zone = zone_id(target);
    let out = r53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .start_record_name(&target.record_name)
        .start_record_type(RrType::Cname)
        .max_items(20)
        .send()
        .await
        .map_err(|e| match error_code(&e) {
            Some("NoSuchHostedZone") => {
                CanaryError::TargetNotFound(format!("hosted zone {zone} does not exist"))
            }
            _ => classify("route53:ListResourceRecordSets", e),
        })?;
    let named: Vec<&ResourceRecordSet> = out
        .resource_record_sets()
        .iter()
        .filter(|r| same_dns_name(r.name(), &target.record_name))
        .collect();
    let mut weights = [0u8; 2];
    let mut ttls = [0u32; 2];
    for (i, slot) in [Slot::Blue, Slot::Green].into_iter().enumerate() {
        let cfg = target.slots.get(slot);
        let rec = named
            .iter()
            .find(|r| r.set_identifier() == Some(cfg.set_identifier.as_str()))
            .ok_or_else(|| {
                CanaryError::TargetNotFound(format!(
                    "no record {} with set identifier {:?} in zone {zone}",
                    target.record_name, cfg.set_identifier
                ))
            })?;
        if rec.r#type() != &RrType::Cname {
            return Err(CanaryError::TargetMisconfigured(format!(
                "record {} ({}) is {}, not a CNAME",
                target.record_name,
                cfg.set_identifier,
                rec.r#type().as_str()
            )));
        }
        let value = rec
            .resource_records()
            .first()
            .map(ResourceRecord::value)
            .unwrap_or_default();
        if !same_dns_name(value, &cfg.dns_name) {
            let other = target.slots.get(slot.other());
            let hint = if same_dns_name(value, &other.dns_name) {
                " (the set identifiers of blue and green look swapped)"
            } else {
                ""
            };
            return Err(CanaryError::TargetMisconfigured(format!(
                "record {} ({}) points at {value}, but the {slot} slot's DNS name is {}{hint}",
                target.record_name, cfg.set_identifier, cfg.dns_name
            )));
        }
        let weight = rec.weight().ok_or_else(|| {
            CanaryError::TargetMisconfigured(format!(
                "record {} ({}) is not a weighted record",
                target.record_name, cfg.set_identifier
            ))
        })?;
        weights[i] = u8::try_from(weight).map_err(|_| {
            CanaryError::TargetMisconfigured(format!(
                "record {} ({}) has weight {weight}; this tool writes 0..=100",
                target.record_name, cfg.set_identifier
            ))
        })?;
        ttls[i] = rec.ttl().and_then(|t| u32::try_from(t).ok()).unwrap_or(0);
    }
    if ttls[0] != ttls[1] {
        return Err(CanaryError::TargetMisconfigured(format!(
            "the weighted records of {} have different TTLs ({} and {}); Route 53 needs one TTL per group",
            target.record_name, ttls[0], ttls[1]
        )));
    }
    Ok(RecordPair {
        weights: Weights {
            blue: weights[0],
            green: weights[1],
        },
        ttl: ttls[0],
    })
}

fn upsert(target: &Target, slot: Slot, weight: u8, ttl: u32) -> Result<Change> {
    change(ChangeAction::Upsert, target, slot, weight, ttl)
}

fn change(
    action: ChangeAction,
    target: &Target,
    slot: Slot,
    weight: u8,
    ttl: u32,
) -> Result<Change> {
    let cfg = target.slots.get(slot);
    let build_err = |e: aws_sdk_route53::error::BuildError| CanaryError::invalid(e.to_string());
    let record = ResourceRecordSet::builder()
        .name(&target.record_name)
        .r#type(RrType::Cname)
        .set_identifier(&cfg.set_identifier)
        .weight(i64::from(weight))
        .ttl(i64::from(ttl))
        .resource_records(
            ResourceRecord::builder()
                .value(&cfg.dns_name)
                .build()
                .map_err(build_err)?,
        )
        .build()
        .map_err(build_err)?;
    Change::builder()
        .action(action)
        .resource_record_set(record)
        .build()
        .map_err(build_err)
}

/// Writes both weights in one batch; returns the change id.
pub async fn write_weights(
    r53: &Client,
    target: &Target,
    w: Weights,
    ttl: u32,
    comment: &str,
) -> Result<String> {
    if w.blue == 0 && w.green == 0 {
        // Route 53 answers an all-zero group with every record: never write one.
        return Err(CanaryError::invalid(
            "refusing to write an all-zero weight group",
        ));
    }
    let batch = ChangeBatch::builder()
        .comment(comment)
        .changes(upsert(target, Slot::Blue, w.blue, ttl)?)
        .changes(upsert(target, Slot::Green, w.green, ttl)?)
        .build()
        .map_err(|e| CanaryError::invalid(e.to_string()))?;
    let out = r53
        .change_resource_record_sets()
        .hosted_zone_id(zone_id(target))
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| match error_code(&e) {
            Some("NoSuchHostedZone") => CanaryError::TargetNotFound(format!(
                "hosted zone {} does not exist",
                zone_id(target)
            )),
            _ => classify("route53:ChangeResourceRecordSets", e),
        })?;
    let id = out
        .change_info()
        .map(|c| c.id().to_string())
        .unwrap_or_default();
    info!(change_id = %id, blue = w.blue, green = w.green, ttl, "weights written");
    Ok(id)
}

/// Writes both weights only if both records are still exactly `from`: one
/// batch that DELETEs each record with the values read and CREATEs it with
/// the new ones. Route 53 processes a batch as a transaction (all changes or
/// none) and a DELETE must match the record's current values, else the
/// whole batch fails with `InvalidChangeBatch` (Route 53 API Reference,
/// ChangeResourceRecordSets). That is a compare-and-swap: if anyone (the
/// alarm-rollback function's UPSERT) wrote in between, nothing is written
/// and the answer is `WeightsChanged`.
pub async fn write_weights_if(
    r53: &Client,
    target: &Target,
    from: RecordPair,
    w: Weights,
    ttl: u32,
    comment: &str,
) -> Result<String> {
    if w.blue == 0 && w.green == 0 {
        return Err(CanaryError::invalid(
            "refusing to write an all-zero weight group",
        ));
    }
    let batch = ChangeBatch::builder()
        .comment(comment)
        .changes(change(
            ChangeAction::Delete,
            target,
            Slot::Blue,
            from.weights.blue,
            from.ttl,
        )?)
        .changes(change(
            ChangeAction::Delete,
            target,
            Slot::Green,
            from.weights.green,
            from.ttl,
        )?)
        .changes(change(
            ChangeAction::Create,
            target,
            Slot::Blue,
            w.blue,
            ttl,
        )?)
        .changes(change(
            ChangeAction::Create,
            target,
            Slot::Green,
            w.green,
            ttl,
        )?)
        .build()
        .map_err(|e| CanaryError::invalid(e.to_string()))?;
    let out = r53
        .change_resource_record_sets()
        .hosted_zone_id(zone_id(target))
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| match error_code(&e) {
            Some("NoSuchHostedZone") => CanaryError::TargetNotFound(format!(
                "hosted zone {} does not exist",
                zone_id(target)
            )),
            Some("InvalidChangeBatch") => CanaryError::WeightsChanged(format!(
                "the records of {} changed after they were read (blue {} / green {}, TTL {}); \
                 nothing was written",
                target.record_name, from.weights.blue, from.weights.green, from.ttl
            )),
            _ => classify("route53:ChangeResourceRecordSets", e),
        })?;
    let id = out
        .change_info()
        .map(|c| c.id().to_string())
        .unwrap_or_default();
    info!(change_id = %id, blue = w.blue, green = w.green, ttl, "weights written (conditional)");
    Ok(id)
}

/// Polls `GetChange` every `poll` until INSYNC, at most `timeout`. Route 53
/// allows 5 calls/s per account across all its APIs: poll sparingly.
pub async fn wait_insync(
    r53: &Client,
    change_id: &str,
    poll: Duration,
    timeout: Duration,
) -> Result<bool> {
    if change_id.is_empty() {
        return Ok(false);
    }
    let started = Instant::now();
    loop {
        let out = r53
            .get_change()
            .id(change_id)
            .send()
            .await
            .map_err(|e| classify("route53:GetChange", e))?;
        let status = out.change_info().map(|c| c.status().clone());
        debug!(change_id, ?status, "GetChange");
        if status == Some(ChangeStatus::Insync) {
            return Ok(true);
        }
        if started.elapsed() + poll > timeout {
            return Err(CanaryError::Retryable(format!(
                "change {change_id} not INSYNC after {}s; the weights are written, a retry confirms them",
                started.elapsed().as_secs()
            )));
        }
        tokio::time::sleep(poll).await;
    }
}

/// The deployment lock record as read: its TXT value and TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRecord {
    pub value: String,
    pub ttl: i64,
}

/// TTL of the lock record; nobody resolves it, DELETE must only repeat it.
const LOCK_TTL: i64 = 60;

/// Reads the deployment lock of `target` (see [`crate::plan::DeploymentLock`]).
pub async fn read_lock(r53: &Client, target: &Target) -> Result<Option<LockRecord>> {
    let name = crate::plan::lock_record_name(&target.record_name);
    let out = r53
        .list_resource_record_sets()
        .hosted_zone_id(zone_id(target))
        .start_record_name(&name)
        .start_record_type(RrType::Txt)
        .max_items(1)
        .send()
        .await
        .map_err(|e| classify("route53:ListResourceRecordSets", e))?;
    Ok(out
        .resource_record_sets()
        .iter()
        .find(|r| same_dns_name(r.name(), &name) && r.r#type() == &RrType::Txt)
        .map(|r| LockRecord {
            value: r
                .resource_records()
                .first()
                .map(|v| v.value().to_string())
                .unwrap_or_default(),
            ttl: r.ttl().unwrap_or(LOCK_TTL),
        }))
}

fn lock_change(target: &Target, action: ChangeAction, value: &str, ttl: i64) -> Result<Change> {
    let build_err = |e: aws_sdk_route53::error::BuildError| CanaryError::invalid(e.to_string());
    let record = ResourceRecordSet::builder()
        .name(crate::plan::lock_record_name(&target.record_name))
        .r#type(RrType::Txt)
        .ttl(ttl)
        .resource_records(
            ResourceRecord::builder()
                .value(value)
                .build()
                .map_err(build_err)?,
        )
        .build()
        .map_err(build_err)?;
    Change::builder()
        .action(action)
        .resource_record_set(record)
        .build()
        .map_err(build_err)
}

/// Takes the lock atomically: `CREATE ours` when `previous` is `None`, else
/// `DELETE previous + CREATE ours` in one batch. `Ok(false)` when another
/// deployment changed the record first (Route 53 refuses the whole batch:
/// the CREATE finds the record, or the DELETE's value no longer matches).
pub async fn take_lock(
    r53: &Client,
    target: &Target,
    previous: Option<&LockRecord>,
    ours: &str,
) -> Result<bool> {
    let mut batch = ChangeBatch::builder().comment("ecs-dns-canary deployment lock");
    if let Some(p) = previous {
        batch = batch.changes(lock_change(target, ChangeAction::Delete, &p.value, p.ttl)?);
    }
    let batch = batch
        .changes(lock_change(target, ChangeAction::Create, ours, LOCK_TTL)?)
        .build()
        .map_err(|e| CanaryError::invalid(e.to_string()))?;
    match r53
        .change_resource_record_sets()
        .hosted_zone_id(zone_id(target))
        .change_batch(batch)
        .send()
        .await
    {
        Ok(_) => {
            info!(lock = ours, "deployment lock taken");
            Ok(true)
        }
        Err(e) if lost_lock_race(error_code(&e), &e) => Ok(false),
        Err(e) => Err(match error_code(&e) {
            Some("NoSuchHostedZone") => CanaryError::TargetNotFound(format!(
                "hosted zone {} does not exist",
                zone_id(target)
            )),
            _ => classify("route53:ChangeResourceRecordSets", e),
        }),
    }
}

/// Route 53's answer when a conditional part of the batch failed:
/// InvalidChangeBatch "... but it already exists" / "... but it was not found".
fn lost_lock_race<E: aws_smithy_types::error::metadata::ProvideErrorMetadata>(
    code: Option<&str>,
    e: &super::SdkError<E>,
) -> bool {
    let message = match e {
        aws_sdk_route53::error::SdkError::ServiceError(se) => se.err().message().unwrap_or(""),
        _ => "",
    };
    code == Some("InvalidChangeBatch")
        && (message.contains("already exists") || message.contains("not found"))
}
