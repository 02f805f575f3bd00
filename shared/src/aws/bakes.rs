//! The bake registry: which running bakes watch an alarm, found by the
//! alarm's name in one DynamoDB `Query` (issue 17 item 2).
//!
//! # Why a DynamoDB table
//! Before this, alarm-rollback listed every running execution
//! (`ListExecutions`, pages of 100) and read each one's history
//! (`GetExecutionHistory`): 1 + N calls per alarm event for N running
//! deployments, against Step Functions' API quotas (Step Functions Developer
//! Guide, "Step Functions service quotas", API action throttling, Standard
//! workflows: GetExecutionHistory bucket 400 / refill 20 per second,
//! ListExecutions bucket 100-200 / refill 2-5 per second). Measured on the
//! local AWS with those limits on (`bench/fleet.py`, `bench/README.md`,
//! 2026-12-02): with N = 20 / 100 / 200 deployments baking, the scan made
//! 28 / 108 / 209 calls and put the weights back in 0.35 / 0.94 / 2.2 s;
//! this registry made 9 calls at every N (one `Query`, one heartbeat and
//! one SendTaskFailure per watching bake, the weight change, one
//! `DeleteItem`) and took 0.20 / 0.14 / 0.12 s. The other candidates: an execution's own tags
//! (Step Functions tags state machines and activities, not executions, and a
//! tag lookup would still be per resource), SSM parameters by path (paged,
//! 40 TPS by default, no TTL). DynamoDB gives what the lookup needs: a
//! partition per alarm name (one `Query` returns every bake that watches
//! it), conditional writes (a late retry of an older bake's start cannot
//! overwrite a newer record; a removal cannot delete a newer bake's record)
//! and TTL (a crashed execution leaves nothing behind).
//!
//! # Items
//! `alarmName` (S, partition key), `execution` (S, sort key: the execution
//! ARN; an execution bakes one step at a time), `taskToken` (S), `request`
//! (S: the bake's check-health request as JSON, alarms and rollback plan),
//! `startedAt` (N, epoch seconds) and `expiresAt` (N, epoch seconds: the
//! table's TTL attribute, set to the end of the bake).
//!
//! # Expiry
//! DynamoDB deletes expired items in the background, "typically within a
//! few days" of expiry, and "items that have expired and not been deleted
//! will still show up in reads, queries, and scans" (DynamoDB Developer
//! Guide, "Time to Live (TTL)" and "Working with expired items"). So
//! [`watchers`] filters on `expiresAt > now` in the query and compares the
//! attribute itself again here: an expired item is never acted on.
//!
//! # Forward steps
//! A guarded forward step (set-weight with alarms and a rollback plan) is
//! recorded too while its call is in flight (`kind` = `shift`), expiring
//! after its longest INSYNC wait, removed when the call ends: an alarm
//! during a step moves traffic back at once, as the history scan did.
//!
//! # Composite alarms, several bakes on one alarm
//! A record is written under every name in the bake's gate, as the gate
//! names them: a composite alarm in the gate is recorded under the
//! composite's name, and its `CloudWatch Alarm State Change` event names the
//! composite, so the lookup finds it (its children's own events find only
//! bakes that name the children). Several deployments watching one alarm
//! are several items in the same partition: one `Query` returns them all.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use tracing::{debug, warn};

use super::{classify, error_code};
use crate::model::{CheckRequest, SetWeightRequest};
use crate::{CanaryError, Result};

/// Pages of one alarm's partition read at most (1 MB each): far more bakes
/// than an account runs at once.
const MAX_PAGES: usize = 20;

/// What a record watches with: a bake (its check-health request, with the
/// task token to fail) or a guarded forward step in flight (its set-weight
/// request; no token: its own guard stops it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watch {
    Bake(Box<CheckRequest>),
    Shift(Box<SetWeightRequest>),
}

/// One bake (or forward step) watching one alarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BakeRecord {
    pub alarm_name: String,
    pub execution_arn: String,
    /// The bake's task token; for a step, an id of the call (`shift:<ms>`)
    /// that only its own removal matches.
    pub task_token: String,
    /// The request (alarms, rollback plan, label).
    pub watch: Watch,
    pub started_at: i64,
    pub expires_at: i64,
}

/// When a bake's record expires: the end of the bake. The record is read
/// only to end a bake that still waits, and after its end the gate that
/// follows the bake sees the alarm itself.
pub fn expiry(started_at: i64, bake_seconds: u64) -> i64 {
    started_at.saturating_add(i64::try_from(bake_seconds).unwrap_or(i64::MAX))
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Records the bake under each alarm it watches. Conditional: an item of
/// the same execution and alarm that started later is kept (a late retry of
/// an older bake's start loses).
pub async fn register(
    ddb: &Client,
    table: &str,
    record: &BakeRecord,
    alarms: &[String],
) -> Result<()> {
    let (kind, request) = match &record.watch {
        Watch::Bake(r) => ("bake", serde_json::to_string(r)),
        Watch::Shift(r) => ("shift", serde_json::to_string(r)),
    };
    let request = request
        .map_err(|e| CanaryError::invalid(format!("bake request does not serialise: {e}")))?;
    for alarm in alarms {
        let out = ddb
            .put_item()
            .table_name(table)
            .item("alarmName", s(alarm.as_str()))
            .item("execution", s(record.execution_arn.as_str()))
            .item("taskToken", s(record.task_token.as_str()))
            .item("kind", s(kind))
            .item("request", s(request.as_str()))
            .item("startedAt", n(record.started_at))
            .item("expiresAt", n(record.expires_at))
            .condition_expression("attribute_not_exists(alarmName) OR startedAt <= :started")
            .expression_attribute_values(":started", n(record.started_at))
            .send()
            .await;
        match out {
            Ok(_) => debug!(alarm = %alarm, execution = %record.execution_arn, "bake registered"),
            Err(e) if error_code(&e) == Some("ConditionalCheckFailedException") => {
                warn!(alarm = %alarm, execution = %record.execution_arn, "a newer bake of this execution is registered: kept");
            }
            Err(e) => return Err(classify("dynamodb:PutItem", e)),
        }
    }
    Ok(())
}

fn item_str(item: &HashMap<String, AttributeValue>, key: &str) -> Option<String> {
    item.get(key)?.as_s().ok().cloned()
}

fn item_num(item: &HashMap<String, AttributeValue>, key: &str) -> Option<i64> {
    item.get(key)?.as_n().ok()?.parse().ok()
}

/// An item as a record; `None` for one that does not parse (logged, skipped).
pub fn record_of(item: &HashMap<String, AttributeValue>) -> Option<BakeRecord> {
    let request = item_str(item, "request")?;
    let watch = match item_str(item, "kind").as_deref() {
        Some("shift") => serde_json::from_str::<SetWeightRequest>(&request)
            .map(|r| Watch::Shift(Box::new(r)))
            .map_err(|e| e.to_string()),
        _ => serde_json::from_str::<CheckRequest>(&request)
            .map(|r| Watch::Bake(Box::new(r)))
            .map_err(|e| e.to_string()),
    };
    let watch = match watch {
        Ok(w) => w,
        Err(e) => {
            warn!(error = %e, "bake record with an unreadable request: skipped");
            return None;
        }
    };
    Some(BakeRecord {
        alarm_name: item_str(item, "alarmName")?,
        execution_arn: item_str(item, "execution")?,
        task_token: item_str(item, "taskToken")?,
        watch,
        started_at: item_num(item, "startedAt").unwrap_or(0),
        expires_at: item_num(item, "expiresAt")?,
    })
}

/// The bakes watching `alarm` that have not expired at `now` (epoch
/// seconds): one strongly consistent `Query` (more only past 1 MB).
pub async fn watchers(ddb: &Client, table: &str, alarm: &str, now: i64) -> Result<Vec<BakeRecord>> {
    let mut records = Vec::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    for _ in 0..MAX_PAGES {
        let out = ddb
            .query()
            .table_name(table)
            .key_condition_expression("alarmName = :a")
            .filter_expression("expiresAt > :now")
            .expression_attribute_values(":a", s(alarm))
            .expression_attribute_values(":now", n(now))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| match error_code(&e) {
                Some("ResourceNotFoundException") => {
                    CanaryError::TargetNotFound(format!("bake table {table} does not exist"))
                }
                _ => classify("dynamodb:Query", e),
            })?;
        // TTL deletion is eventual and the filter is the service's: compare
        // the TTL attribute here too.
        records.extend(
            out.items()
                .iter()
                .filter_map(record_of)
                .filter(|r| r.expires_at > now),
        );
        start = out.last_evaluated_key().cloned();
        if start.is_none() {
            return Ok(records);
        }
    }
    warn!(alarm, pages = MAX_PAGES, "bake registry: stopped paging");
    Ok(records)
}

/// Removes a bake's record, only if it still holds this token (a newer bake
/// of the same execution keeps its own).
pub async fn remove(
    ddb: &Client,
    table: &str,
    alarm: &str,
    execution_arn: &str,
    token: &str,
) -> Result<()> {
    let out = ddb
        .delete_item()
        .table_name(table)
        .key("alarmName", s(alarm))
        .key("execution", s(execution_arn))
        .condition_expression("taskToken = :t")
        .expression_attribute_values(":t", s(token))
        .send()
        .await;
    match out {
        Ok(_) => Ok(()),
        Err(e) if error_code(&e) == Some("ConditionalCheckFailedException") => Ok(()),
        Err(e) => Err(classify("dynamodb:DeleteItem", e)),
    }
}
