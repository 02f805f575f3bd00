//! The vocabulary of the story: a [`Note`] per thing that happened (a
//! sentence plus structured fields for `--json`), how an execution ended
//! ([`Ending`]), what the progress display shows ([`Progress`]), and the
//! small text helpers the narration and the tables share.

use canary_engine::model::{AlarmReport, Slot};
use serde::Serialize;
use serde_json::Value;

use crate::event::Outcome;
use crate::time::secs_text;

/// One thing that happened, with the sentence a person reads.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    /// The history event id it comes from.
    pub event: i64,
    /// RFC 3339.
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(flatten)]
    pub what: What,
    pub text: String,
    /// Worth a line in text mode (state entries and task calls are not; the
    /// bar shows them). JSON output has every note.
    #[serde(skip)]
    pub loud: bool,
}

/// The structured part of a [`Note`], tagged by `kind` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum What {
    Started {
        #[serde(skip_serializing_if = "Option::is_none")]
        service: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        image: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        task_definition: Option<String>,
    },
    Entered {
        state_type: String,
    },
    Exited {
        state_type: String,
    },
    Calling {
        call: String,
    },
    Planned {
        live_slot: Slot,
        new_slot: Slot,
        new_task_set: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        old_task_set: Option<String>,
        steps: Vec<u8>,
        bake_seconds: u32,
        first_deployment: bool,
    },
    Readiness {
        ready: bool,
        healthy_instances: u32,
        unhealthy_instances: u32,
        waited_seconds: u64,
        reason: String,
    },
    Weights {
        blue: u8,
        green: u8,
        #[serde(skip_serializing_if = "Option::is_none")]
        step: Option<usize>,
        #[serde(skip_serializing_if = "Option::is_none")]
        steps: Option<usize>,
        role: WeightRole,
        #[serde(skip_serializing_if = "Option::is_none")]
        primary_task_set: Option<String>,
    },
    BakeStarted {
        #[serde(skip_serializing_if = "Option::is_none")]
        seconds: Option<i64>,
        alarms: Vec<String>,
    },
    BakeOver {
        #[serde(skip_serializing_if = "Option::is_none")]
        seconds: Option<i64>,
    },
    /// **Wait for approval** started (`strategy.approval`): the execution
    /// waits for `approve` / `reject`, alarms watched as in a bake.
    AwaitingApproval {
        #[serde(skip_serializing_if = "Option::is_none")]
        seconds: Option<i64>,
        alarms: Vec<String>,
        /// The exact commands that answer it.
        approve_command: String,
        reject_command: String,
    },
    /// Nobody answered within `strategy.approval.timeoutSeconds`.
    ApprovalTimedOut {
        #[serde(skip_serializing_if = "Option::is_none")]
        seconds: Option<i64>,
    },
    /// `approve` answered the wait.
    Approved {
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    Gate {
        passed: bool,
        alarms: Vec<AlarmReport>,
        insufficient_data: Vec<String>,
    },
    Deleted {
        task_set_id: String,
        deleted: bool,
    },
    TaskSucceeded {
        output: Value,
    },
    TaskFailed {
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cause: Option<String>,
    },
    Ended(Ending),
}

/// Why a weight change happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum WeightRole {
    /// One canary step towards the new slot.
    Step,
    /// All traffic to the new slot, new task set PRIMARY.
    Promote,
    /// All traffic back to the slot that was live.
    Rollback,
    /// A weight change the tracker cannot place.
    Other,
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ending {
    pub status: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
}

/// What the progress display shows.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Number of canary steps, 0 while unknown.
    pub steps: usize,
    /// Steps whose weights are in place (all of them once promoted).
    pub reached: usize,
    /// e.g. "Shift traffic — step 2/3 → 50%".
    pub message: String,
    pub rolling_back: bool,
}

/// The commands that answer an approval wait of execution `name`.
pub fn approval_commands(name: &str) -> (String, String) {
    (
        format!("ecs-dns-canary approve {name}"),
        format!("ecs-dns-canary reject {name} --reason TEXT"),
    )
}

pub(super) fn alarm_list(alarms: &[String]) -> String {
    if alarms.is_empty() {
        "no alarms".to_string()
    } else {
        alarms.join(", ")
    }
}

pub(super) fn failure_text(error: Option<&str>, cause: Option<&str>) -> String {
    match (error, cause) {
        (Some(e), Some(c)) if !c.is_empty() => format!("{e}: {c}"),
        (Some(e), _) => e.to_string(),
        (None, Some(c)) => c.to_string(),
        (None, None) => "failed".to_string(),
    }
}

pub(super) fn ending_text(end: &Ending) -> String {
    let took = end
        .duration_seconds
        .map(|d| format!(" after {}", secs_text(d)))
        .unwrap_or_default();
    match end.status {
        Outcome::Succeeded => format!("SUCCEEDED{took}"),
        other => format!(
            "{}{took}: {}",
            other.as_str(),
            failure_text(end.error.as_deref(), end.cause.as_deref())
        ),
    }
}

/// `name` from `arn:aws:ecs:r:1:service/cluster/name`.
pub fn short_name(name_or_arn: &str) -> String {
    name_or_arn
        .rsplit('/')
        .next()
        .unwrap_or(name_or_arn)
        .to_string()
}

/// At most `max` characters, with an ellipsis when cut.
pub fn abbreviate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_serialize_flat_with_a_kind() -> Result<(), String> {
        let note = Note {
            event: 26,
            at: "2026-11-27T06:18:01.591Z".into(),
            state: Some("Shift traffic".into()),
            what: What::Weights {
                blue: 90,
                green: 10,
                step: Some(1),
                steps: Some(3),
                role: WeightRole::Step,
                primary_task_set: None,
            },
            text: "step 1/3: weights blue 90 / green 10".into(),
            loud: true,
        };
        let v = serde_json::to_value(&note).map_err(|e| e.to_string())?;
        assert_eq!(
            v,
            serde_json::json!({
                "event": 26, "at": "2026-11-27T06:18:01.591Z", "state": "Shift traffic",
                "kind": "weights", "blue": 90, "green": 10, "step": 1, "steps": 3, "role": "step",
                "text": "step 1/3: weights blue 90 / green 10"
            })
        );
        Ok(())
    }

    #[test]
    fn long_text_is_abbreviated() {
        assert_eq!(abbreviate("abcdef", 4), "abc…");
        assert_eq!(abbreviate("abc", 4), "abc");
        assert_eq!(short_name("arn:aws:ecs:eu-west-1:1:service/c/web"), "web");
    }
}
