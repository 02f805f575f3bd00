//! CloudWatch: the alarm gate. One look at each alarm's state now and at its
//! state history over the bake window, so a long bake needs one check instead
//! of a polling loop.
//!
//! CloudWatch's read limits are per account and region and not adjustable
//! (DescribeAlarms 9/s, DescribeAlarmHistory 20/s; CloudWatch User Guide,
//! "CloudWatch service quotas"), shared by every deployment running at once.
//! So the gate (1) batches: one DescribeAlarms per 100 names, and history
//! only for alarms whose state changed inside the window (an alarm quiet now
//! whose last state update is older than the window cannot have been in
//! ALARM during it); (2) paces its own calls ([`Pacing::interval`]); and (3)
//! meets throttling with its own patient retry (full-jitter backoff), apart
//! from the state machine's six `Retryable` retries: once that budget is
//! spent it fails `Throttled`, which the state machine retries on its own
//! patient schedule instead of rolling back a healthy deployment.

use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::types::{AlarmType, HistoryItemType, StateValue};
use aws_sdk_cloudwatch::Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::DateTime;
use tracing::{debug, warn};

use super::{classify, error_code, SdkError};
use crate::plan::{self, AlarmObservation, AlarmWindow};
use crate::states::parse_alarm_state;
use crate::{CanaryError, Result};

/// DescribeAlarms takes at most 100 names per call.
const NAMES_PER_CALL: usize = 100;

/// How the gate spaces and retries its CloudWatch calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Least time between two CloudWatch calls of one gate check.
    pub interval: Duration,
    /// Throttled calls are retried up to this many times...
    pub throttle_retries: u32,
    /// ...after a random wait in `[0, min(cap, base * 2^n))`...
    pub throttle_base: Duration,
    pub throttle_cap: Duration,
    /// ...within this much time in all; then `Throttled`.
    pub throttle_budget: Duration,
}

impl Default for Pacing {
    /// Fits the functions' 60 s timeout with room to spare: at most about
    /// 25 s of throttling waits per call.
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(100),
            throttle_retries: 8,
            throttle_base: Duration::from_millis(250),
            throttle_cap: Duration::from_secs(5),
            throttle_budget: Duration::from_secs(25),
        }
    }
}

/// Runs one CloudWatch call with the gate's pacing and throttling retry.
struct Paced {
    pacing: Pacing,
    last: Option<Instant>,
}

impl Paced {
    fn new(pacing: Pacing) -> Self {
        Self { pacing, last: None }
    }

    /// `other` names any error that is not throttling (a `classify` call
    /// with the operation's literal name, which the IAM check reads).
    async fn call<T, E, F, Fut, C>(&mut self, operation: &str, mut f: F, other: C) -> Result<T>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        F: FnMut() -> Fut,
        C: Fn(SdkError<E>) -> CanaryError,
        Fut: std::future::Future<Output = std::result::Result<T, SdkError<E>>>,
    {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            if let Some(last) = self.last {
                let since = last.elapsed();
                if since < self.pacing.interval {
                    tokio::time::sleep(self.pacing.interval - since).await;
                }
            }
            self.last = Some(Instant::now());
            let err = match f().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if !plan::is_throttling(error_code(&err)) {
                return Err(other(err));
            }
            let wait = plan::backoff(
                attempt,
                self.pacing.throttle_base,
                self.pacing.throttle_cap,
                random_u64(),
            );
            if attempt >= self.pacing.throttle_retries
                || started.elapsed() + wait > self.pacing.throttle_budget
            {
                warn!(
                    operation,
                    attempts = attempt + 1,
                    "CloudWatch still throttling"
                );
                return Err(CanaryError::Throttled(format!(
                    "{operation}: throttled {} times in {}s (CloudWatch's per-account limit is \
                     shared by every deployment); nothing was decided",
                    attempt + 1,
                    started.elapsed().as_secs()
                )));
            }
            debug!(
                operation,
                attempt,
                wait_ms = wait.as_millis() as u64,
                "throttled: waiting"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// A random number for jitter, from the standard library's per-instance
/// random hash keys (no extra crate for one number).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// [`observe_paced`] with the default [`Pacing`].
pub async fn observe(
    cw: &Client,
    names: &[String],
    since: DateTime,
) -> Result<Vec<AlarmObservation>> {
    observe_paced(cw, Pacing::default(), names, since).await
}

/// Observes every named alarm: its state now and whether it was in ALARM at
/// any moment since `since`. A name that matches no alarm is `TargetNotFound`.
pub async fn observe_paced(
    cw: &Client,
    pacing: Pacing,
    names: &[String],
    since: DateTime,
) -> Result<Vec<AlarmObservation>> {
    let mut paced = Paced::new(pacing);
    let mut observed = Vec::with_capacity(names.len());
    // When each alarm's state last changed, if CloudWatch says.
    let mut last_change: Vec<Option<DateTime>> = Vec::with_capacity(names.len());
    for chunk in names.chunks(NAMES_PER_CALL) {
        let mut token = None;
        loop {
            let out = paced
                .call(
                    "cloudwatch:DescribeAlarms",
                    || {
                        cw.describe_alarms()
                            .set_alarm_names(Some(chunk.to_vec()))
                            .alarm_types(AlarmType::MetricAlarm)
                            .alarm_types(AlarmType::CompositeAlarm)
                            .set_next_token(token.clone())
                            .send()
                    },
                    |e| classify("cloudwatch:DescribeAlarms", e),
                )
                .await?;
            let latest = |a: Option<&DateTime>, b: Option<&DateTime>| match (a, b) {
                (Some(a), Some(b)) => Some(if a.secs() >= b.secs() { *a } else { *b }),
                (a, b) => a.or(b).copied(),
            };
            let metric = out.metric_alarms().iter().map(|a| {
                (
                    a.alarm_name(),
                    a.state_value(),
                    a.state_reason(),
                    latest(
                        a.state_updated_timestamp(),
                        a.state_transitioned_timestamp(),
                    ),
                )
            });
            let composite = out.composite_alarms().iter().map(|a| {
                (
                    a.alarm_name(),
                    a.state_value(),
                    a.state_reason(),
                    latest(
                        a.state_updated_timestamp(),
                        a.state_transitioned_timestamp(),
                    ),
                )
            });
            for (name, state, reason, changed) in metric.chain(composite) {
                observed.push(AlarmObservation {
                    name: name.unwrap_or_default().to_string(),
                    state: state.cloned().unwrap_or_else(|| StateValue::from("")),
                    reason: reason.unwrap_or_default().to_string(),
                    fired_in_window: false,
                });
                last_change.push(changed);
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !observed.iter().any(|o| &o.name == *n))
        .collect();
    if !missing.is_empty() {
        return Err(CanaryError::TargetNotFound(format!(
            "CloudWatch alarm(s) {missing:?} do not exist"
        )));
    }
    // Read the history from a little before the window: CloudWatch's clock
    // and ours differ, and an overlap with the previous window only re-reads
    // what the previous gate already passed.
    let from = DateTime::from_secs(since.secs() - plan::ALARM_CLOCK_SLACK_SECONDS);
    for (o, changed) in observed.iter_mut().zip(&last_change) {
        if !plan::needs_history(&o.state, changed.map(|c| c.secs()), from.secs()) {
            continue;
        }
        o.fired_in_window = was_in_alarm_since(cw, &mut paced, &o.name, from).await?;
    }
    // Report in the order the input named them.
    observed.sort_by_key(|o| names.iter().position(|n| n == &o.name));
    Ok(observed)
}

/// True when the alarm's state history shows it in ALARM at any moment since
/// `since`: a transition into ALARM, or out of it, inside the window.
async fn was_in_alarm_since(
    cw: &Client,
    paced: &mut Paced,
    name: &str,
    since: DateTime,
) -> Result<bool> {
    let mut token = None;
    loop {
        let out = paced
            .call(
                "cloudwatch:DescribeAlarmHistory",
                || {
                    cw.describe_alarm_history()
                        .alarm_name(name)
                        .history_item_type(HistoryItemType::StateUpdate)
                        // DescribeAlarmHistory returns metric alarms only unless
                        // AlarmTypes names CompositeAlarm (CloudWatch API
                        // Reference, DescribeAlarmHistory, AlarmTypes): a
                        // composite gate alarm that went to ALARM and back would
                        // otherwise leave no trace here.
                        .alarm_types(AlarmType::CompositeAlarm)
                        .alarm_types(AlarmType::MetricAlarm)
                        .start_date(since)
                        .end_date(crate::time::now())
                        .set_next_token(token.clone())
                        .send()
                },
                |e| classify("cloudwatch:DescribeAlarmHistory", e),
            )
            .await?;
        if out
            .alarm_history_items()
            .iter()
            .any(|i| touches_alarm(i.history_data(), i.history_summary()))
        {
            return Ok(true);
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(false);
        }
    }
}

/// What each named alarm needs to see a regression (for the bake check):
/// metric alarms by Period x EvaluationPeriods; composite alarms by the
/// children their rule names, read in one more DescribeAlarms call (a child
/// that is itself composite counts by its own children, read the same way
/// once more; deeper nesting and children that cannot be read are left out).
pub async fn alarm_windows(cw: &Client, names: &[String]) -> Result<Vec<(String, AlarmWindow)>> {
    let top = describe_windows(cw, names).await?;
    let mut out = Vec::with_capacity(top.len());
    for (name, w) in top {
        out.push((name, expand(cw, w, 2).await?));
    }
    Ok(out)
}

/// A composite as read: the child names of its rule, to be resolved.
enum RawWindow {
    Done(AlarmWindow),
    Composite(Vec<String>),
}

async fn expand(cw: &Client, w: RawWindow, depth: u8) -> Result<AlarmWindow> {
    match w {
        RawWindow::Done(w) => Ok(w),
        RawWindow::Composite(children) if depth == 0 || children.is_empty() => {
            Ok(AlarmWindow::Composite(Vec::new()))
        }
        RawWindow::Composite(children) => {
            let mut resolved = Vec::new();
            for (_, child) in describe_windows(cw, &children).await? {
                resolved.push(Box::pin(expand(cw, child, depth - 1)).await?);
            }
            Ok(AlarmWindow::Composite(resolved))
        }
    }
}

async fn describe_windows(cw: &Client, names: &[String]) -> Result<Vec<(String, RawWindow)>> {
    let mut out = Vec::new();
    for chunk in names.chunks(NAMES_PER_CALL) {
        let mut token = None;
        loop {
            let page = cw
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| classify("cloudwatch:DescribeAlarms", e))?;
            for a in page.metric_alarms() {
                let period = a.period().and_then(|p| u32::try_from(p).ok());
                let evaluation_periods = a.evaluation_periods().and_then(|p| u32::try_from(p).ok());
                // A metric-math alarm keeps its period in its Metrics list.
                let period = period.or_else(|| {
                    a.metrics()
                        .iter()
                        .filter_map(|m| {
                            m.period()
                                .or_else(|| m.metric_stat().and_then(|s| s.period()))
                        })
                        .filter_map(|p| u32::try_from(p).ok())
                        .max()
                });
                let w = match (period, evaluation_periods) {
                    (Some(period), Some(evaluation_periods)) if period > 0 => AlarmWindow::Metric {
                        period,
                        evaluation_periods,
                    },
                    _ => AlarmWindow::Unknown,
                };
                out.push((
                    a.alarm_name().unwrap_or_default().to_string(),
                    RawWindow::Done(w),
                ));
            }
            for a in page.composite_alarms() {
                let children = plan::composite_children(a.alarm_rule().unwrap_or_default());
                out.push((
                    a.alarm_name().unwrap_or_default().to_string(),
                    RawWindow::Composite(children),
                ));
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    Ok(out)
}

/// Reads a StateUpdate history item: `HistoryData` is JSON with `oldState`
/// and `newState`; the summary ("Alarm updated from OK to ALARM") is the
/// fallback when the data is absent or unreadable.
pub fn touches_alarm(data: Option<&str>, summary: Option<&str>) -> bool {
    if let Some(v) = data.and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok()) {
        let state = |k: &str| {
            v.get(k)
                .and_then(|s| s.get("stateValue"))
                .and_then(|s| s.as_str())
        };
        if state("newState").is_some() || state("oldState").is_some() {
            let alarm = |k: &str| state(k).map(parse_alarm_state) == Some(StateValue::Alarm);
            return alarm("newState") || alarm("oldState");
        }
    }
    summary.is_some_and(|s| {
        s.split_whitespace()
            .map(|w| parse_alarm_state(w.trim_matches(|c: char| !c.is_ascii_alphabetic())))
            .any(|state| state == StateValue::Alarm)
    })
}

#[cfg(test)]
mod tests {
    use super::touches_alarm;

    #[test]
    fn reads_history_data_and_falls_back_to_the_summary() {
        let into =
            r#"{"version":"1.0","oldState":{"stateValue":"OK"},"newState":{"stateValue":"ALARM"}}"#;
        let out_of =
            r#"{"version":"1.0","oldState":{"stateValue":"ALARM"},"newState":{"stateValue":"OK"}}"#;
        let quiet = r#"{"version":"1.0","oldState":{"stateValue":"INSUFFICIENT_DATA"},"newState":{"stateValue":"OK"}}"#;
        assert!(touches_alarm(Some(into), None));
        assert!(touches_alarm(Some(out_of), None));
        assert!(!touches_alarm(
            Some(quiet),
            Some("Alarm updated from ALARM to OK")
        ));
        assert!(touches_alarm(None, Some("Alarm updated from OK to ALARM")));
        assert!(!touches_alarm(
            None,
            Some("Alarm updated from OK to INSUFFICIENT_DATA")
        ));
    }
}
