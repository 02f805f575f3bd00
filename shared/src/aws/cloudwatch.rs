//! CloudWatch: the alarm gate. One look at each alarm's state now and at its
//! state history over the bake window, so a long bake needs one check instead
//! of a polling loop.

use aws_sdk_cloudwatch::types::{AlarmType, HistoryItemType};
use aws_sdk_cloudwatch::Client;
use aws_smithy_types::DateTime;

use super::classify;
use crate::plan::AlarmObservation;
use crate::{CanaryError, Result};

/// DescribeAlarms takes at most 100 names per call.
const NAMES_PER_CALL: usize = 100;

/// Observes every named alarm: its state now and whether it was in ALARM at
/// any moment since `since`. A name that matches no alarm is `TargetNotFound`.
pub async fn observe(
    cw: &Client,
    names: &[String],
    since: DateTime,
) -> Result<Vec<AlarmObservation>> {
    let mut observed = Vec::with_capacity(names.len());
    for chunk in names.chunks(NAMES_PER_CALL) {
        let mut token = None;
        loop {
            let out = cw
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| classify("cloudwatch:DescribeAlarms", e))?;
            let metric = out
                .metric_alarms()
                .iter()
                .map(|a| (a.alarm_name(), a.state_value(), a.state_reason()));
            let composite = out
                .composite_alarms()
                .iter()
                .map(|a| (a.alarm_name(), a.state_value(), a.state_reason()));
            for (name, state, reason) in metric.chain(composite) {
                observed.push(AlarmObservation {
                    name: name.unwrap_or_default().to_string(),
                    state: state.map(|s| s.as_str().to_string()).unwrap_or_default(),
                    reason: reason.unwrap_or_default().to_string(),
                    fired_in_window: false,
                });
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
    for o in &mut observed {
        if o.state != "ALARM" {
            o.fired_in_window = was_in_alarm_since(cw, &o.name, since).await?;
        }
    }
    // Report in the order the input named them.
    observed.sort_by_key(|o| names.iter().position(|n| n == &o.name));
    Ok(observed)
}

/// True when the alarm's state history shows it in ALARM at any moment since
/// `since`: a transition into ALARM, or out of it, inside the window.
async fn was_in_alarm_since(cw: &Client, name: &str, since: DateTime) -> Result<bool> {
    let mut token = None;
    loop {
        let out = cw
            .describe_alarm_history()
            .alarm_name(name)
            .history_item_type(HistoryItemType::StateUpdate)
            // DescribeAlarmHistory returns metric alarms only unless
            // AlarmTypes names CompositeAlarm (CloudWatch API Reference,
            // DescribeAlarmHistory, AlarmTypes): a composite gate alarm that
            // went to ALARM and back would otherwise leave no trace here.
            .alarm_types(AlarmType::CompositeAlarm)
            .alarm_types(AlarmType::MetricAlarm)
            .start_date(since)
            .end_date(crate::time::now())
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| classify("cloudwatch:DescribeAlarmHistory", e))?;
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
            return state("newState") == Some("ALARM") || state("oldState") == Some("ALARM");
        }
    }
    summary.is_some_and(|s| {
        s.split_whitespace()
            .any(|w| w.trim_matches(|c: char| !c.is_ascii_alphabetic()) == "ALARM")
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
