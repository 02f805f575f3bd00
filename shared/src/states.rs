//! Typed states: what AWS reports (task set status, stability, alarm state)
//! and what the engine decides (readiness verdict, alarm-rollback action).
//!
//! The SDK's own enums are used where they exist
//! ([`StabilityStatus`], [`StateValue`]); ECS's task set `status` is a plain
//! string in the SDK, so [`TaskSetStatus`] stands in for it. Unknown values
//! are kept (`Other` / the SDK's `Unknown`) rather than rejected: a status a
//! newer AWS adds must not break a running deployment.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use aws_sdk_cloudwatch::types::StateValue;
pub use aws_sdk_ecs::types::StabilityStatus;

/// A task set's `status` (ECS API Reference, TaskSet: "PRIMARY", "ACTIVE" or
/// "DRAINING"; INACTIVE ones are not returned by DescribeServices).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TaskSetStatus {
    Primary,
    Active,
    Draining,
    /// A value this engine does not know (kept verbatim).
    Other(String),
}

impl TaskSetStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "PRIMARY" => Self::Primary,
            "ACTIVE" => Self::Active,
            "DRAINING" => Self::Draining,
            other => Self::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Primary => "PRIMARY",
            Self::Active => "ACTIVE",
            Self::Draining => "DRAINING",
            Self::Other(s) => s,
        }
    }

    pub fn is_draining(&self) -> bool {
        *self == Self::Draining
    }

    pub fn is_primary(&self) -> bool {
        *self == Self::Primary
    }
}

impl fmt::Display for TaskSetStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An alarm state from a string (an EventBridge event, a stored report).
/// Unknown values become the SDK's `Unknown` variant, which keeps the text.
pub fn parse_alarm_state(s: &str) -> StateValue {
    StateValue::from(s)
}

/// A stability status from a string; unknown values are kept likewise.
pub fn parse_stability(s: &str) -> StabilityStatus {
    StabilityStatus::from(s)
}

/// The readiness decision over one task set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready {
        /// One sentence a person reads in the console.
        reason: String,
    },
    /// Not yet: poll again (or fail with `NotReady` after the deadline).
    NotReady { reason: String },
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready { .. })
    }

    pub fn reason(&self) -> &str {
        match self {
            Self::Ready { reason } | Self::NotReady { reason } => reason,
        }
    }

    pub fn into_reason(self) -> String {
        match self {
            Self::Ready { reason } | Self::NotReady { reason } => reason,
        }
    }
}

/// What the alarm-rollback function did for one running execution:
/// `notBaking` (not waiting in a bake nor shifting), `notWatching` (its bake
/// or step does not watch this alarm), `rolledBack` (weights moved back to
/// the live slot), `bakeEnded` (no rollback plan in the bake: only the token
/// was failed) or `failed`. (Variant docs would turn the JSON Schema into a
/// `oneOf`; kept here so it stays one `enum`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RollbackAction {
    NotBaking,
    NotWatching,
    RolledBack,
    BakeEnded,
    Failed,
}

impl RollbackAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotBaking => "notBaking",
            Self::NotWatching => "notWatching",
            Self::RolledBack => "rolledBack",
            Self::BakeEnded => "bakeEnded",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for RollbackAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_set_status_parses_and_round_trips() {
        let table = [
            ("PRIMARY", TaskSetStatus::Primary),
            ("ACTIVE", TaskSetStatus::Active),
            ("DRAINING", TaskSetStatus::Draining),
            ("INACTIVE", TaskSetStatus::Other("INACTIVE".into())),
            ("", TaskSetStatus::Other(String::new())),
            ("primary", TaskSetStatus::Other("primary".into())),
        ];
        for (text, want) in table {
            let got = TaskSetStatus::parse(text);
            assert_eq!(got, want, "{text:?}");
            assert_eq!(got.as_str(), text, "{text:?} round trip");
            assert_eq!(got.to_string(), text);
        }
        assert!(TaskSetStatus::parse("DRAINING").is_draining());
        assert!(!TaskSetStatus::parse("ACTIVE").is_draining());
        assert!(TaskSetStatus::parse("PRIMARY").is_primary());
        assert!(!TaskSetStatus::parse("PRIMARYX").is_primary());
    }

    #[test]
    fn alarm_state_parses_and_round_trips() {
        let table = [
            ("ALARM", Some(StateValue::Alarm)),
            ("OK", Some(StateValue::Ok)),
            ("INSUFFICIENT_DATA", Some(StateValue::InsufficientData)),
            ("alarm", None),
            ("", None),
        ];
        for (text, want) in table {
            let got = parse_alarm_state(text);
            match want {
                Some(w) => assert_eq!(got, w, "{text:?}"),
                None => assert!(
                    !matches!(
                        got,
                        StateValue::Alarm | StateValue::Ok | StateValue::InsufficientData
                    ),
                    "{text:?} parsed as {got:?}"
                ),
            }
            assert_eq!(got.as_str(), text, "{text:?} round trip");
        }
    }

    #[test]
    fn stability_parses_and_round_trips() {
        let table = [
            ("STEADY_STATE", Some(StabilityStatus::SteadyState)),
            ("STABILIZING", Some(StabilityStatus::Stabilizing)),
            ("MISSING", None),
            ("UNKNOWN", None),
        ];
        for (text, want) in table {
            let got = parse_stability(text);
            match want {
                Some(w) => assert_eq!(got, w, "{text:?}"),
                None => assert!(
                    !matches!(
                        got,
                        StabilityStatus::SteadyState | StabilityStatus::Stabilizing
                    ),
                    "{text:?} parsed as {got:?}"
                ),
            }
            assert_eq!(got.as_str(), text, "{text:?} round trip");
        }
    }

    #[test]
    fn rollback_action_serializes_to_the_wire_strings() {
        let table = [
            (RollbackAction::NotBaking, "notBaking"),
            (RollbackAction::NotWatching, "notWatching"),
            (RollbackAction::RolledBack, "rolledBack"),
            (RollbackAction::BakeEnded, "bakeEnded"),
            (RollbackAction::Failed, "failed"),
        ];
        for (action, text) in table {
            let json = serde_json::to_value(action).unwrap_or_default();
            assert_eq!(json, serde_json::Value::String(text.into()));
            assert_eq!(action.as_str(), text);
            let back: Option<RollbackAction> = serde_json::from_value(json).ok();
            assert_eq!(back, Some(action));
        }
        assert!(serde_json::from_str::<RollbackAction>("\"rolledback\"").is_err());
    }
}
