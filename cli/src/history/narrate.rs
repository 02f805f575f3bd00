//! Narration: [`Tracker`] reads events one at a time (as `watch` receives
//! them) and turns them into [`Note`]s and a [`Progress`]. Pure: events in,
//! values out.

use std::collections::HashSet;

use aws_smithy_types::DateTime;
use canary_engine::model::{DeploymentRequest, Slot};

use super::note::{
    abbreviate, alarm_list, approval_commands, ending_text, failure_text, short_name, Ending, Note,
    Progress, WeightRole, What,
};
use crate::event::{readable_cause, Approval, Call, Event, Outcome, TaskResult};
use crate::time::{rfc3339, seconds_between};

/// What the tracker knows about the deployment so far.
#[derive(Debug, Default, Clone)]
struct Plan {
    steps: Vec<u8>,
    new_slot: Option<Slot>,
    live_slot: Option<Slot>,
}

impl Plan {
    /// 1-based index of a canary step, when `percent` to `slot` is one.
    fn step_of(&self, slot: Slot, percent: u8) -> Option<usize> {
        if self.new_slot.is_some_and(|new| slot != new) {
            return None;
        }
        self.steps.iter().position(|p| *p == percent).map(|i| i + 1)
    }

    fn role(&self, call: Option<&Call>) -> WeightRole {
        match call {
            Some(Call::SetWeight {
                slot, mark_primary, ..
            }) => {
                let to_live = self.live_slot == Some(*slot);
                let to_new = self.new_slot.is_none_or(|new| *slot == new);
                if to_live {
                    WeightRole::Rollback
                } else if to_new && mark_primary.is_some() {
                    WeightRole::Promote
                } else if to_new {
                    WeightRole::Step
                } else {
                    WeightRole::Other
                }
            }
            _ => WeightRole::Other,
        }
    }
}

/// Reads events in id order and says what they mean.
#[derive(Debug, Default)]
pub struct Tracker {
    plan: Plan,
    state: Option<String>,
    call: Option<Call>,
    call_timeout: Option<i64>,
    progress: Progress,
    started: Option<DateTime>,
    ending: Option<Ending>,
    waits_seen: HashSet<String>,
    last_readiness: Option<(bool, u32, u32)>,
    /// The rollback bound last narrated (create's, then a longer one that
    /// a set-weight measured).
    bound_seconds: Option<u32>,
    /// The execution's name, for the exact `approve` / `reject` commands.
    execution: Option<String>,
}

impl Tracker {
    /// A tracker for the execution `arn` (its name goes into the commands
    /// it prints).
    pub fn for_execution(arn: &str) -> Self {
        Self {
            execution: Some(arn.rsplit(':').next().unwrap_or(arn).to_string()),
            ..Self::default()
        }
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    pub fn ending(&self) -> Option<&Ending> {
        self.ending.as_ref()
    }

    /// The notes one event gives (often none, sometimes two).
    pub fn ingest(&mut self, e: &Event) -> Vec<Note> {
        let mut notes = Vec::new();
        let mut note = |what: What, text: String, loud: bool, state: Option<String>| {
            notes.push(Note {
                event: e.id,
                at: rfc3339(e.at),
                state,
                what,
                text,
                loud,
            })
        };
        let state = self.state.clone();

        if let Some(status) = Outcome::of(&e.kind) {
            let ending = Ending {
                status,
                error: e.error.clone(),
                cause: e.cause.as_deref().map(readable_cause),
                duration_seconds: self.started.map(|s| seconds_between(s, e.at)),
            };
            let text = ending_text(&ending);
            self.progress.message = text.clone();
            self.ending = Some(ending.clone());
            note(What::Ended(ending), text, true, None);
            return notes;
        }

        match e.kind.as_str() {
            "ExecutionStarted" => {
                self.started = Some(e.at);
                // The execution input is the engine's request (an input
                // that does not read as one fails in create-taskset).
                let input = e
                    .input
                    .as_deref()
                    .and_then(|i| serde_json::from_str::<DeploymentRequest>(i).ok());
                if let Some(steps) = input.as_ref().and_then(|i| i.strategy.steps.clone()) {
                    self.plan.steps = steps;
                    self.progress.steps = self.plan.steps.len();
                }
                let (service, image, task_definition) = match input {
                    Some(i) => (
                        Some(short_name(&i.target.service)),
                        i.image,
                        i.task_definition,
                    ),
                    None => (None, None, None),
                };
                let mut text = String::from("started");
                if let Some(what) = image.as_ref().or(task_definition.as_ref()) {
                    text.push_str(&format!(": {what}"));
                }
                if let Some(s) = &service {
                    text.push_str(&format!(" → service {s}"));
                }
                self.progress.message = "started".into();
                note(
                    What::Started {
                        service,
                        image,
                        task_definition,
                    },
                    text,
                    true,
                    None,
                );
            }
            _ if e.is_state_entered() => {
                let name = e.state.clone().unwrap_or_default();
                let state_type = e.state_type().unwrap_or_default().to_string();
                self.state = Some(name.clone());
                self.call = None;
                self.call_timeout = None;
                self.progress.message = match state_type.as_str() {
                    "Wait" => format!("{name} — waiting"),
                    _ => name.clone(),
                };
                // A Wait is worth a line the first time (drain), not on every
                // turn of a polling loop.
                let loud = match state_type.as_str() {
                    "Wait" => self.waits_seen.insert(name.clone()),
                    "Fail" | "Succeed" => true,
                    _ => false,
                };
                let text = match state_type.as_str() {
                    "Wait" => "waiting".to_string(),
                    "Fail" => "Fail state".to_string(),
                    "Succeed" => "Succeed state".to_string(),
                    other => format!("entered ({other})"),
                };
                note(What::Entered { state_type }, text, loud, Some(name));
            }
            _ if e.is_state_exited() => {
                let state_type = e.state_type().unwrap_or_default().to_string();
                note(
                    What::Exited { state_type },
                    "exited".into(),
                    false,
                    e.state.clone(),
                );
            }
            "TaskScheduled" => {
                let call = Call::from_parameters(
                    e.parameters.as_deref().unwrap_or("{}"),
                    e.waits_for_callback(),
                );
                let described = self.describe_call(&call, e.timeout_seconds);
                self.progress.message = match &state {
                    Some(s) => format!("{s} — {described}"),
                    None => described.clone(),
                };
                if let Call::SetWeight { slot, .. } = &call {
                    self.progress.rolling_back |= self.plan.live_slot == Some(*slot);
                }
                let approval = state.as_deref() == Some(APPROVAL_STATE);
                if let (Call::Bake { alarms, label }, true) = (&call, approval) {
                    let name = self.execution.as_deref().unwrap_or("EXECUTION");
                    let (approve_command, reject_command) = approval_commands(name);
                    // The label names the paused step ("approval before
                    // step 2 of 3 (50%)"); the step count is the fallback.
                    let mut text = match label.as_deref() {
                        Some(l) if l.starts_with("approval before ") => format!("waiting for {l}"),
                        _ => format!(
                            "waiting for approval before step {}/{}",
                            self.progress.reached + 1,
                            self.plan.steps.len()
                        ),
                    };
                    if let Some(s) = e.timeout_seconds {
                        text.push_str(&format!(" (up to {s} s)"));
                    }
                    text.push_str(&format!(
                        ", watching {}; approve: {approve_command}; reject: {reject_command}",
                        alarm_list(alarms)
                    ));
                    self.progress.message =
                        format!("{APPROVAL_STATE} — approve: {approve_command}");
                    note(
                        What::AwaitingApproval {
                            seconds: e.timeout_seconds,
                            alarms: alarms.clone(),
                            approve_command,
                            reject_command,
                        },
                        text,
                        true,
                        state.clone(),
                    );
                } else if let Call::Bake { alarms, .. } = &call {
                    let text = described.clone();
                    note(
                        What::BakeStarted {
                            seconds: e.timeout_seconds,
                            alarms: alarms.clone(),
                        },
                        text,
                        true,
                        state.clone(),
                    );
                } else {
                    note(
                        What::Calling {
                            call: described.clone(),
                        },
                        described,
                        false,
                        state.clone(),
                    );
                }
                self.call = Some(call);
                self.call_timeout = e.timeout_seconds;
            }
            "TaskSucceeded" if self.state.as_deref() == Some(APPROVAL_STATE) => {
                let by = e
                    .output
                    .as_deref()
                    .and_then(|o| serde_json::from_str::<Approval>(o).ok())
                    .map(|a| a.approved_by);
                let text = match &by {
                    Some(b) => format!("approved by {b}"),
                    None => "approved".to_string(),
                };
                note(What::Approved { by }, text, true, state);
            }
            "TaskTimedOut" if self.state.as_deref() == Some(APPROVAL_STATE) => {
                let seconds = self.call_timeout;
                let text = match seconds {
                    Some(s) => format!("approval timed out: nobody answered in {s} s"),
                    None => "approval timed out".to_string(),
                };
                note(What::ApprovalTimedOut { seconds }, text, true, state);
            }
            "TaskSucceeded" => {
                let result = TaskResult::from_output(e.output.as_deref().unwrap_or("null"));
                let (what, text, loud) = self.describe_result(result);
                note(what, text, loud, state);
            }
            "TaskTimedOut"
                if e.waits_for_callback() || matches!(self.call, Some(Call::Bake { .. })) =>
            {
                // The bake is a callback task whose timeout *is* the bake
                // time: reaching it means no alarm ended the bake.
                let seconds = self.call_timeout;
                let text = match seconds {
                    Some(s) => format!("bake over: no alarm event in {s} s"),
                    None => "bake over: no alarm event".to_string(),
                };
                note(What::BakeOver { seconds }, text, true, state);
            }
            "TaskFailed" | "TaskTimedOut" | "TaskStartFailed" | "TaskSubmitFailed" => {
                let cause = e.cause.as_deref().map(readable_cause);
                let text = failure_text(e.error.as_deref(), cause.as_deref());
                note(
                    What::TaskFailed {
                        error: e.error.clone(),
                        cause,
                    },
                    text,
                    true,
                    state.or_else(|| e.state.clone()),
                );
            }
            _ => {}
        }
        notes
    }

    fn describe_call(&self, call: &Call, timeout: Option<i64>) -> String {
        let n = self.plan.steps.len();
        match call {
            Call::Create {
                image,
                task_definition,
            } => match image.as_ref().or(task_definition.as_ref()) {
                Some(what) => format!("creating the new task set for {what}"),
                None => "creating the new task set".to_string(),
            },
            Call::Readiness { task_set } => format!("waiting for {task_set} to be ready"),
            Call::SetWeight { slot, percent, .. } => {
                let slot_text = slot.to_string();
                match self.plan.role(Some(call)) {
                    WeightRole::Rollback => format!("rolling back: {percent}% to {slot_text}"),
                    WeightRole::Promote => format!("promoting {slot_text} ({percent}%)"),
                    _ => match self.plan.step_of(*slot, *percent) {
                        Some(k) => format!("step {k}/{n} → {percent}%"),
                        None => format!("{percent}% to {slot_text}"),
                    },
                }
            }
            Call::Bake { alarms, .. } => {
                let mut text = String::from("baking");
                if self.progress.reached > 0 {
                    text.push_str(&format!(" step {}/{n}", self.progress.reached));
                }
                if let Some(s) = timeout {
                    text.push_str(&format!(" for {s} s"));
                }
                format!("{text}, watching {}", alarm_list(alarms))
            }
            Call::Gate { alarms, .. } => format!("checking alarms {}", alarm_list(alarms)),
            Call::Delete { task_set, slot } => format!("deleting {task_set} ({slot})"),
            Call::Other { function } => match function {
                Some(f) => format!("calling {f}"),
                None => "running".to_string(),
            },
        }
    }

    fn describe_result(&mut self, result: TaskResult) -> (What, String, bool) {
        match result {
            TaskResult::Deployment(d) => {
                self.plan = Plan {
                    steps: d.strategy.steps.clone(),
                    new_slot: Some(d.new_slot),
                    live_slot: if d.first_deployment {
                        None
                    } else {
                        Some(d.live_slot)
                    },
                };
                self.progress.steps = self.plan.steps.len();
                let old = d.old_task_set.as_ref().map(|t| t.id.clone());
                let steps_text = d
                    .strategy
                    .steps
                    .iter()
                    .map(u8::to_string)
                    .collect::<Vec<_>>()
                    .join(",");
                let text = if d.first_deployment {
                    format!(
                        "new task set {} in {} (first deployment: all traffic moves once it is ready)",
                        d.new_task_set.id, d.new_slot
                    )
                } else {
                    format!(
                        "new task set {} in {} (live: {}{}); steps {}, bake {} s",
                        d.new_task_set.id,
                        d.new_slot,
                        d.live_slot,
                        old.as_ref()
                            .map(|o| format!(", old {o}"))
                            .unwrap_or_default(),
                        steps_text,
                        d.strategy.bake_seconds
                    )
                };
                // Issue 13: how long a rollback takes to reach clients.
                let text = match &d.rollback_bound {
                    Some(b) => {
                        self.bound_seconds = Some(b.seconds);
                        format!("{text}; {}", b.statement)
                    }
                    None => text,
                };
                let what = What::Planned {
                    live_slot: d.live_slot,
                    new_slot: d.new_slot,
                    new_task_set: d.new_task_set.id.clone(),
                    old_task_set: old,
                    steps: d.strategy.steps.clone(),
                    bake_seconds: d.strategy.bake_seconds,
                    first_deployment: d.first_deployment,
                };
                (what, text, true)
            }
            TaskResult::Readiness(r) => {
                let key = (r.ready, r.healthy_instances, r.unhealthy_instances);
                let changed = self.last_readiness != Some(key);
                self.last_readiness = Some(key);
                let text = if r.ready {
                    format!("ready: {} (waited {} s)", r.reason, r.waited_seconds)
                } else {
                    format!(
                        "not ready yet: {} (waited {} s)",
                        r.reason, r.waited_seconds
                    )
                };
                if let Some(s) = &self.state {
                    self.progress.message = format!("{s} — {}", r.reason);
                }
                let what = What::Readiness {
                    ready: r.ready,
                    healthy_instances: r.healthy_instances,
                    unhealthy_instances: r.unhealthy_instances,
                    waited_seconds: r.waited_seconds,
                    reason: r.reason,
                };
                (what, text, changed || r.ready)
            }
            TaskResult::Weights(w) => {
                let role = self.plan.role(self.call.as_ref());
                let n = self.plan.steps.len();
                let step = match (&self.call, role) {
                    (Some(Call::SetWeight { slot, percent, .. }), WeightRole::Step) => {
                        self.plan.step_of(*slot, *percent)
                    }
                    _ => None,
                };
                match role {
                    WeightRole::Step => {
                        if let Some(k) = step {
                            self.progress.reached = self.progress.reached.max(k);
                        }
                    }
                    WeightRole::Promote => self.progress.reached = n,
                    WeightRole::Rollback => self.progress.rolling_back = true,
                    WeightRole::Other => {}
                }
                let split = format!("blue {} / green {}", w.weights.blue, w.weights.green);
                let unchanged = if w.changed { "" } else { " (already in place)" };
                let text = match (role, step) {
                    (WeightRole::Step, Some(k)) => {
                        format!("step {k}/{n}: weights {split}{unchanged}")
                    }
                    (WeightRole::Promote, _) => format!(
                        "promoted: weights {split}{}{unchanged}",
                        w.primary_task_set
                            .as_ref()
                            .map(|p| format!(", primary {p}"))
                            .unwrap_or_default()
                    ),
                    (WeightRole::Rollback, _) => format!(
                        "rolled back: weights {split}{}{unchanged}",
                        w.primary_task_set
                            .as_ref()
                            .map(|p| format!(", primary {p}"))
                            .unwrap_or_default()
                    ),
                    _ => format!("weights {split}{unchanged}"),
                };
                // The exact drain's instant (the explanation is in the history).
                let text = match &w.drain {
                    Some(d) => format!("{text}; drain until {} ({} s)", d.until, d.seconds),
                    None => text,
                };
                // Issue 13: a change slower to INSYNC than the bound assumed.
                let text = match &w.rollback_bound {
                    Some(b) if self.bound_seconds.is_some_and(|s| b.seconds > s) => {
                        self.bound_seconds = Some(b.seconds);
                        format!(
                            "{text}; Route 53 took {} s to be INSYNC, so {}",
                            b.propagation_seconds, b.statement
                        )
                    }
                    _ => text,
                };
                let what = What::Weights {
                    blue: w.weights.blue,
                    green: w.weights.green,
                    step,
                    steps: (n > 0).then_some(n),
                    role,
                    primary_task_set: w.primary_task_set,
                };
                (what, text, true)
            }
            TaskResult::Gate(g) => {
                let states = g
                    .alarms
                    .iter()
                    .map(|a| {
                        let fired = if a.fired_in_window {
                            " (fired in window)"
                        } else {
                            ""
                        };
                        format!("{} {}{fired}", a.name, a.state)
                    })
                    .collect::<Vec<_>>();
                let mut text = if g.passed {
                    "alarm gate passed".to_string()
                } else {
                    "alarm gate FAILED".to_string()
                };
                if states.is_empty() {
                    text.push_str(" (no alarms configured)");
                } else {
                    text.push_str(&format!(": {}", states.join(", ")));
                }
                if !g.insufficient_data.is_empty() {
                    text.push_str(&format!(
                        "; let pass with INSUFFICIENT_DATA: {}",
                        g.insufficient_data.join(", ")
                    ));
                }
                let what = What::Gate {
                    passed: g.passed,
                    alarms: g.alarms,
                    insufficient_data: g.insufficient_data,
                };
                (what, text, true)
            }
            TaskResult::Deleted(d) => {
                let text = if d.deleted {
                    format!("deleted task set {}", d.task_set_id)
                } else {
                    format!("task set {} was already gone", d.task_set_id)
                };
                let what = What::Deleted {
                    task_set_id: d.task_set_id,
                    deleted: d.deleted,
                };
                (what, text, true)
            }
            TaskResult::Other(v) => {
                let text = format!("answered {}", abbreviate(&v.to_string(), 120));
                (What::TaskSucceeded { output: v }, text, false)
            }
        }
    }
}

/// The approval wait's state (`canary_engine::plan::states::APPROVAL`).
pub(super) const APPROVAL_STATE: &str = canary_engine::plan::states::APPROVAL;

/// The whole story of a finished (or running) execution.
pub fn story(events: &[Event]) -> (Vec<Note>, Tracker) {
    let mut tracker = Tracker::default();
    let notes = events.iter().flat_map(|e| tracker.ingest(e)).collect();
    (notes, tracker)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::load;
    use crate::history::visits_of;
    use serde_json::Value;

    /// history-success.json up to step 1's bake waiting for its token, that
    /// bake renamed to the approval wait, then `answer` (an event object).
    async fn approval_wait(answer: Option<Value>) -> Result<Vec<Event>, String> {
        let text = crate::fixtures::fixture_text("history-success.json")?;
        let mut body: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let events = body["events"].as_array_mut().ok_or("no events")?;
        let bake = events
            .iter()
            .position(|e| e["stateEnteredEventDetails"]["name"] == "Bake")
            .ok_or("no bake")?;
        events.truncate(bake + 4); // entered, scheduled, started, submitted
        events[bake]["stateEnteredEventDetails"]["name"] = APPROVAL_STATE.into();
        let params = events[bake + 1]["taskScheduledEventDetails"]["parameters"]
            .as_str()
            .ok_or("no parameters")?
            .replace("\"step 1 of 3", "\"approval before step 1 of 3");
        events[bake + 1]["taskScheduledEventDetails"]["parameters"] = params.into();
        if let Some(a) = answer {
            events.push(a);
        }
        crate::fixtures::load_body(body.to_string()).await
    }

    #[tokio::test]
    async fn an_approval_wait_prints_the_exact_commands_and_who_approved() -> Result<(), String> {
        let arn = "arn:aws:states:us-east-1:1:execution:ecs-dns-canary:web-v2";
        let events = approval_wait(None).await?;
        let mut tracker = Tracker::for_execution(arn);
        let notes: Vec<Note> = events.iter().flat_map(|e| tracker.ingest(e)).collect();
        let waiting = notes
            .iter()
            .find_map(|n| match &n.what {
                What::AwaitingApproval {
                    approve_command, ..
                } => Some((approve_command.clone(), n.text.clone())),
                _ => None,
            })
            .ok_or("no awaitingApproval note")?;
        assert_eq!(waiting.0, "ecs-dns-canary approve web-v2");
        assert!(
            waiting.1.starts_with("waiting for approval before step 1 of 3 (10%) (up to 1 s), watching web-5xx; approve: ecs-dns-canary approve web-v2; reject: ecs-dns-canary reject web-v2 --reason TEXT"),
            "{}",
            waiting.1
        );
        let (states, _) = visits_of(&events, Some(arn));
        let hint = crate::executions::awaiting_approval("RUNNING", "web-v2", &states)
            .ok_or("no hint while waiting")?;
        assert_eq!(
            hint.reject_command,
            "ecs-dns-canary reject web-v2 --reason TEXT"
        );
        assert!(crate::executions::awaiting_approval("FAILED", "web-v2", &states).is_none());

        let approved = serde_json::json!({
            "timestamp": 1795761405.0, "type": "TaskSucceeded", "id": 42, "previousEventId": 41,
            "taskSucceededEventDetails": {"resourceType": "lambda", "resource": "invoke.waitForTaskToken",
                "output": "{\"approvedBy\":\"arn:aws:iam::1:user/alice\",\"approvedAt\":\"2026-12-02T06:00:00Z\"}"}
        });
        let events = approval_wait(Some(approved)).await?;
        let (notes, _) = story(&events);
        assert!(
            texts(&notes).contains(&format!(
                "[{APPROVAL_STATE}] approved by arn:aws:iam::1:user/alice"
            )),
            "{:?}",
            texts(&notes)
        );
        let (states, _) = visits_of(&events, Some(arn));
        assert!(crate::executions::awaiting_approval("RUNNING", "web-v2", &states).is_none());
        Ok(())
    }

    fn texts(notes: &[Note]) -> Vec<String> {
        notes
            .iter()
            .filter(|n| n.loud)
            .map(|n| match &n.state {
                Some(s) => format!("[{s}] {}", n.text),
                None => n.text.clone(),
            })
            .collect()
    }

    /// Issue 13: the plan's rollback bound and the exact drain's instant
    /// are narrated where create's and set-weight's answers are.
    #[tokio::test]
    async fn the_rollback_bound_and_the_drain_are_narrated() -> Result<(), String> {
        let text = crate::fixtures::fixture_text("history-success.json")?;
        let mut v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let events = v["events"].as_array_mut().ok_or("no events")?;
        let (mut bound, mut drain) = (false, false);
        for e in events.iter_mut() {
            let Some(out) = e.pointer_mut("/taskSucceededEventDetails/output") else {
                continue;
            };
            let mut o: serde_json::Value =
                serde_json::from_str(out.as_str().unwrap_or("{}")).map_err(|e| e.to_string())?;
            if o["Payload"].get("newTaskSet").is_some() && !bound {
                o["Payload"]["rollbackBound"] = serde_json::json!({
                    "seconds": 65, "propagationSeconds": 60, "propagationSource": "documented",
                    "ttlSeconds": 5, "detection": [{"alarm": "web-5xx", "seconds": 70}],
                    "statement": "a rollback reaches every client within 65 s of its decision \
                        (Route 53 propagation 60 s documented + CNAME TTL 5 s); bad version -> \
                        decision: web-5xx 70 s"
                });
                bound = true;
            } else if o["Payload"].get("primaryTaskSet").is_some() && !drain {
                o["Payload"]["drain"] = serde_json::json!({
                    "until": "2026-11-27T10:20:30Z", "seconds": 25, "explain": "x"
                });
                drain = true;
            } else {
                continue;
            }
            *out = serde_json::Value::String(o.to_string());
        }
        assert!(
            bound && drain,
            "fixture lacks create's or the promotion's answer"
        );
        let events = crate::fixtures::load_body(v.to_string()).await?;
        let lines = texts(&story(&events).0);
        assert!(
            lines.iter().any(|l| l.starts_with("[Create task set in idle slot]")
                && l.ends_with("; a rollback reaches every client within 65 s of its decision (Route 53 propagation 60 s documented + CNAME TTL 5 s); bad version -> decision: web-5xx 70 s")),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("[Promote new task set] promoted")
                    && l.ends_with("; drain until 2026-11-27T10:20:30Z (25 s)")),
            "{lines:#?}"
        );
        Ok(())
    }

    /// Issue 13 residue: a set-weight answer whose carried rollback bound
    /// grew (a change measured slower to INSYNC) is narrated once.
    #[tokio::test]
    async fn a_rollback_bound_raised_by_a_measured_insync_is_narrated() -> Result<(), String> {
        let text = crate::fixtures::fixture_text("history-success.json")?;
        let mut v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let events = v["events"].as_array_mut().ok_or("no events")?;
        let bound = |p: u32, source: &str| {
            serde_json::json!({
                "seconds": p + 5, "propagationSeconds": p, "propagationSource": source,
                "ttlSeconds": 5, "statement": format!("a rollback reaches new connections within {} s", p + 5)
            })
        };
        let mut weights = 0;
        for e in events.iter_mut() {
            let Some(out) = e.pointer_mut("/taskSucceededEventDetails/output") else {
                continue;
            };
            let mut o: serde_json::Value =
                serde_json::from_str(out.as_str().unwrap_or("{}")).map_err(|e| e.to_string())?;
            if o["Payload"].get("newTaskSet").is_some() {
                o["Payload"]["rollbackBound"] = bound(60, "documented");
            } else if o["Payload"].get("weights").is_some() {
                weights += 1;
                // The first step measured 95 s; later answers carry the same bound.
                o["Payload"]["rollbackBound"] = if weights == 1 {
                    bound(60, "documented")
                } else {
                    bound(95, "measured")
                };
            } else {
                continue;
            }
            *out = serde_json::Value::String(o.to_string());
        }
        assert!(weights >= 3, "fixture has {weights} set-weight answers");
        let events = crate::fixtures::load_body(v.to_string()).await?;
        let lines = texts(&story(&events).0);
        let raised: Vec<_> = lines
            .iter()
            .filter(|l| l.contains("Route 53 took 95 s to be INSYNC, so a rollback reaches new connections within 100 s"))
            .collect();
        assert_eq!(raised.len(), 1, "{lines:#?}");
        Ok(())
    }

    #[tokio::test]
    async fn a_successful_canary_reads_as_steps_gates_and_promotion() -> Result<(), String> {
        let events = load("history-success.json").await?;
        let (notes, tracker) = story(&events);
        let lines = texts(&notes);
        let expect = [
            "started: 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2 → service web",
            "[Create task set in idle slot] new task set ecs-svc/222 in green (live: blue, old ecs-svc/111); steps 10,50,100, bake 1 s",
            "[Check new task set readiness] not ready yet: 0 of 2 instances healthy (waited 0 s)",
            "[Wait for new task set] waiting",
            "[Check new task set readiness] ready: 2 of 2 instances healthy (waited 1 s)",
            "[Shift traffic] step 1/3: weights blue 90 / green 10",
            "[Bake] baking step 1/3 for 1 s, watching web-5xx",
            "[Bake] bake over: no alarm event in 1 s",
            "[Check alarms] alarm gate passed: web-5xx OK",
            "[Shift traffic] step 2/3: weights blue 50 / green 50",
        ];
        assert_eq!(lines[..expect.len()], expect, "{lines:#?}");
        let tail = [
            "[Shift traffic] step 3/3: weights blue 0 / green 100",
            "[Bake] baking step 3/3 for 1 s, watching web-5xx",
            "[Bake] bake over: no alarm event in 1 s",
            "[Check alarms] alarm gate passed: web-5xx OK",
            "[Promote new task set] promoted: weights blue 0 / green 100, primary ecs-svc/222",
            "[Drain old task set] waiting",
            "[Delete old task set] deleted task set ecs-svc/111",
            "[Deployment complete] Succeed state",
        ];
        let n = lines.len();
        assert_eq!(lines[n - 1 - tail.len()..n - 1], tail, "{lines:#?}");
        let last = lines.last().cloned().unwrap_or_default();
        assert!(last.starts_with("SUCCEEDED after 5."), "{last}");
        assert_eq!(tracker.ending().map(|e| e.status), Some(Outcome::Succeeded));
        assert_eq!(tracker.progress().reached, 3);
        assert_eq!(tracker.progress().steps, 3);
        assert!(!tracker.progress().rolling_back);
        Ok(())
    }

    #[tokio::test]
    async fn progress_names_the_step_while_traffic_shifts() -> Result<(), String> {
        let events = load("history-success.json").await?;
        let mut tracker = Tracker::default();
        let mut messages = Vec::new();
        for e in &events {
            tracker.ingest(e);
            messages.push(tracker.progress().message.clone());
        }
        for expected in [
            "Create task set in idle slot — creating the new task set for 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2",
            "Check new task set readiness — 0 of 2 instances healthy",
            "Shift traffic — step 2/3 → 50%",
            "Bake — baking step 2/3 for 1 s, watching web-5xx",
            "Check alarms — checking alarms web-5xx",
            "Promote new task set — promoting green (100%)",
            "Drain old task set — waiting",
            "Delete old task set — deleting ecs-svc/111 (blue)",
        ] {
            assert!(messages.iter().any(|m| m == expected), "{expected:?} not in {messages:#?}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_failing_gate_reads_as_rollback_with_the_cause() -> Result<(), String> {
        let events = load("history-gate-alarm-rollback.json").await?;
        let (notes, tracker) = story(&events);
        let lines = texts(&notes);
        let tail = [
            "[Check alarms] AlarmFiring: alarm firing: web-5xx was in ALARM at 2026-11-27T06:31:02Z (Threshold Crossed: 1 datapoint [12.0] was greater than the threshold (5.0))",
            "[Roll back traffic] rolled back: weights blue 100 / green 0, primary ecs-svc/111",
            "[Drain new task set] waiting",
            "[Delete new task set] deleted task set ecs-svc/222",
            "[Deployment failed] Fail state",
        ];
        let n = lines.len();
        assert_eq!(lines[n - 1 - tail.len()..n - 1], tail, "{lines:#?}");
        let end = tracker.ending().cloned().ok_or("no ending")?;
        assert_eq!(end.status, Outcome::Failed);
        assert_eq!(end.error.as_deref(), Some("RolledBackOnAlarm"));
        // The Fail state's sentence embeds the Lambda cause JSON: shown as its message.
        assert_eq!(
            end.cause.as_deref(),
            Some("An alarm fired at step 2 of 3 (50%) (alarm firing: web-5xx was in ALARM at 2026-11-27T06:31:02Z (Threshold Crossed: 1 datapoint [12.0] was greater than the threshold (5.0))). All traffic went back to the blue slot and the new task set ecs-svc/222 was deleted.")
        );
        assert_eq!(
            tracker.progress().reached,
            2,
            "step 2 was reached before the gate failed"
        );
        assert!(tracker.progress().rolling_back);
        Ok(())
    }

    #[tokio::test]
    async fn an_alarm_during_the_bake_reads_as_a_failed_bake() -> Result<(), String> {
        let events = load("history-bake-alarm-rollback.json").await?;
        let (notes, tracker) = story(&events);
        let lines = texts(&notes);
        assert!(
            lines.contains(&"[Shift traffic] step 1/2: weights blue 75 / green 25".to_string()),
            "{lines:#?}"
        );
        assert!(lines.contains(&"[Bake] baking step 1/2 for 3 s, watching web-5xx".to_string()));
        // moto drops the cause of SendTaskFailure; the error name remains.
        assert!(lines.contains(&"[Bake] AlarmFiring".to_string()));
        assert!(lines.contains(
            &"[Roll back traffic] rolled back: weights blue 100 / green 0, primary ecs-svc/111"
                .to_string()
        ));
        assert_eq!(
            tracker.ending().and_then(|e| e.error.clone()).as_deref(),
            Some("RolledBackOnAlarm")
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_refused_deployment_ends_before_traffic_moves() -> Result<(), String> {
        let events = load("history-create-failed.json").await?;
        let (notes, tracker) = story(&events);
        let lines = texts(&notes);
        assert!(lines.contains(&"[Create task set in idle slot] DeploymentInProgress: deployment in progress: task set ecs-svc/333 is ACTIVE next to the primary; wait for it or roll it back".to_string()), "{lines:#?}");
        let end = tracker.ending().cloned().ok_or("no ending")?;
        assert_eq!(end.error.as_deref(), Some("CreateFailed"));
        assert!(end
            .cause
            .as_deref()
            .is_some_and(|c| c.contains("Traffic was not touched")));
        assert!(!notes.iter().any(|n| matches!(n.what, What::Weights { .. })));
        assert_eq!(tracker.progress().reached, 0);
        Ok(())
    }

    #[tokio::test]
    async fn a_runtime_error_is_reported_with_its_cause() -> Result<(), String> {
        let events = load("history-runtime-error.json").await?;
        let (_, tracker) = story(&events);
        let end = tracker.ending().cloned().ok_or("no ending")?;
        assert_eq!(end.error.as_deref(), Some("States.Runtime"));
        assert!(end
            .cause
            .as_deref()
            .is_some_and(|c| c.contains("'Check readiness'")));
        Ok(())
    }
}
