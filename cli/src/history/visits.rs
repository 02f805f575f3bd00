//! Folding: the notes of a whole history folded into the states in the
//! order they were entered ([`Visit`]s, with durations), for `history`.

use aws_smithy_types::DateTime;
use serde::Serialize;

use super::narrate::Tracker;
use super::note::{Ending, What};
use crate::event::Event;
use crate::time::seconds_between;

/// One pass through a state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Visit {
    pub state: String,
    pub state_type: String,
    pub entered_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exited_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// Task calls made (more than one means retries).
    pub attempts: u32,
    /// What the state was asked to do (task input, summarized).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    /// What came of it (task result, bake end, next state of a Choice).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(skip)]
    entered: Option<DateTime>,
}

/// The states in the order they were entered, from the events.
pub fn visits(events: &[Event]) -> (Vec<Visit>, Option<Ending>) {
    visits_of(events, None)
}

/// [`visits`] of the execution `arn` (its name goes into the commands an
/// approval wait prints).
pub fn visits_of(events: &[Event], arn: Option<&str>) -> (Vec<Visit>, Option<Ending>) {
    let mut tracker = arn.map(Tracker::for_execution).unwrap_or_default();
    let mut visits: Vec<Visit> = Vec::new();
    // The open visit: this state machine has no Map or Parallel state, so
    // at most one state is open at a time (a Fail state never exits).
    let mut current: Option<usize> = None;
    let mut pending_choice: Option<usize> = None;
    let mut ending = None;
    for e in events {
        for n in tracker.ingest(e) {
            match &n.what {
                What::Entered { state_type } => {
                    let name = n.state.clone().unwrap_or_default();
                    if let Some(i) = pending_choice.take() {
                        if let Some(v) = visits.get_mut(i) {
                            v.result.get_or_insert_with(|| format!("→ {name}"));
                        }
                    }
                    visits.push(Visit {
                        state: name.clone(),
                        state_type: state_type.clone(),
                        entered_at: n.at.clone(),
                        exited_at: None,
                        duration_seconds: None,
                        attempts: 0,
                        call: None,
                        result: None,
                        error: None,
                        cause: None,
                        entered: Some(e.at),
                    });
                    current = Some(visits.len() - 1);
                }
                What::Exited { state_type } => {
                    let name = n.state.clone().unwrap_or_default();
                    let open = current.filter(|i| visits.get(*i).is_some_and(|v| v.state == name));
                    if let Some(v) = open.and_then(|i| visits.get_mut(i)) {
                        v.exited_at = Some(n.at.clone());
                        v.duration_seconds = v.entered.map(|t| seconds_between(t, e.at));
                        if state_type == "Choice" {
                            pending_choice = open;
                        }
                        current = None;
                    }
                }
                What::Ended(end) => {
                    if let Some(v) = current.and_then(|i| visits.get_mut(i)) {
                        if v.state_type == "Fail" {
                            v.error.clone_from(&end.error);
                            v.cause.clone_from(&end.cause);
                        }
                    }
                    ending = Some(end.clone());
                }
                What::Started { .. } => {}
                what => {
                    let Some(v) = current.and_then(|i| visits.get_mut(i)) else {
                        continue;
                    };
                    match what {
                        What::Calling { call } => {
                            v.attempts += 1;
                            v.call = Some(call.clone());
                        }
                        What::BakeStarted { .. } | What::AwaitingApproval { .. } => {
                            v.attempts += 1;
                            v.call = Some(n.text.clone());
                        }
                        What::TaskFailed { error, cause } => {
                            v.error.clone_from(error);
                            v.cause.clone_from(cause);
                        }
                        _ => v.result = Some(n.text.clone()),
                    }
                }
            }
        }
    }
    (visits, ending)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Outcome;
    use crate::fixtures::load;

    #[tokio::test]
    async fn visits_list_states_in_order_with_durations() -> Result<(), String> {
        let events = load("history-gate-alarm-rollback.json").await?;
        let (visits, ending) = visits(&events);
        let names: Vec<&str> = visits.iter().map(|v| v.state.as_str()).collect();
        assert_eq!(names.first(), Some(&"Create task set in idle slot"));
        assert_eq!(names.last(), Some(&"Deployment failed"));
        let create = visits.first().ok_or("no visit")?;
        assert_eq!(create.attempts, 1);
        assert_eq!(
            create.call.as_deref(),
            Some(
                "creating the new task set for 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v3"
            )
        );
        assert!(create
            .result
            .as_deref()
            .is_some_and(|r| r.starts_with("new task set ecs-svc/222")));
        assert!(create
            .duration_seconds
            .is_some_and(|d| (0.0..1.0).contains(&d)));
        let choice = visits
            .iter()
            .find(|v| v.state == "New task set ready?")
            .ok_or("no choice")?;
        assert_eq!(choice.result.as_deref(), Some("→ Wait for new task set"));
        let bake = visits.iter().find(|v| v.state == "Bake").ok_or("no bake")?;
        assert_eq!(
            bake.result.as_deref(),
            Some("bake over: no alarm event in 1 s")
        );
        assert!(bake
            .duration_seconds
            .is_some_and(|d| (1.0..2.0).contains(&d)));
        let gate = visits
            .iter()
            .rfind(|v| v.state == "Check alarms")
            .ok_or("no gate")?;
        assert_eq!(gate.error.as_deref(), Some("AlarmFiring"));
        let fail = visits.last().ok_or("no visit")?;
        assert_eq!(fail.error.as_deref(), Some("RolledBackOnAlarm"));
        assert!(fail
            .cause
            .as_deref()
            .is_some_and(|c| c.starts_with("An alarm fired at step 2 of 3")));
        assert_eq!(ending.map(|e| e.status), Some(Outcome::Failed));
        Ok(())
    }
}
