//! The one error type of the engine. Every kind has a stable `error_type`
//! name: the README lists them all, and the state machine matches some of
//! them by name: `Retryable` and `Throttled` in `Retry` rules, `AlarmFiring`,
//! `WeightsChanged` and `Aborted` in `Catch` rules (`Aborted` reaches it
//! through the bake's task token, from the CLI's `abort`); it treats the
//! others alike through `States.ALL`. A name, once shipped, never changes.
//!
//! The kinds are listed once, in the `error_kinds!` call below: it makes the
//! [`CanaryError`] variants, the fieldless [`ErrorKind`] (`as_str()`, `ALL`)
//! and [`CanaryError::ALL_TYPES`]. To add a kind: add one entry there, a row
//! to the README's error table, a `Retry`/`Catch` in
//! `statemachine/deployment.asl.json` if the state machine treats it apart,
//! then regenerate the contract file the Python tests read with
//! `UPDATE_CONTRACT=1 cargo test -p canary-engine --test contract`
//! (`contract/contract.json`; the test fails while it is stale).

use lambda_runtime::Diagnostic;

/// Makes, from one list, the error enum (one `String` message per
/// variant), its fieldless kind and the name lists. Each entry:
/// `/// doc`, `Name => "display prefix"`.
macro_rules! error_kinds {
    ($( $(#[doc = $doc:literal])* $name:ident => $prefix:literal, )+) => {
        /// What went wrong, named for the cause. Messages say what to do.
        #[derive(Debug, PartialEq, Eq)]
        pub enum CanaryError {
            $( $(#[doc = $doc])* $name(String), )+
        }

        /// The kind of a [`CanaryError`], without its message.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorKind {
            $( $(#[doc = $doc])* $name, )+
        }

        impl ErrorKind {
            /// Every kind, in README order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$name,)+];

            /// The stable `error_type` name (the variant's own name).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( ErrorKind::$name => stringify!($name), )+
                }
            }

            /// The words the message starts with ("invalid input: ...").
            pub const fn prefix(self) -> &'static str {
                match self {
                    $( ErrorKind::$name => $prefix, )+
                }
            }
        }

        impl CanaryError {
            /// Every `error_type` the functions can return, in README order.
            pub const ALL_TYPES: &'static [&'static str] = &[$(stringify!($name),)+];

            /// An error of `kind` with `message`.
            pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
                let message = message.into();
                match kind {
                    $( ErrorKind::$name => Self::$name(message), )+
                }
            }

            pub fn kind(&self) -> ErrorKind {
                match self {
                    $( Self::$name(_) => ErrorKind::$name, )+
                }
            }

            /// The message without the kind's prefix.
            pub fn message(&self) -> &str {
                match self {
                    $( Self::$name(m) => m, )+
                }
            }
        }
    };
}

error_kinds! {
    /// The input is malformed or contradicts itself. Nothing was changed.
    InvalidInput => "invalid input",

    /// A resource named by the input (cluster, service, hosted zone, record,
    /// Cloud Map service, task definition) does not exist.
    TargetNotFound => "not found",

    /// The resources exist but are not shaped the way a deployment needs
    /// (records not weighted CNAMEs, set identifiers swapped, TTLs differing,
    /// service not on the EXTERNAL deployment controller, ...).
    TargetMisconfigured => "target misconfigured",

    /// Another deployment of this service is under way (a second task set
    /// exists or traffic is split). Wait for it, or roll it back.
    DeploymentInProgress => "deployment in progress",

    /// The service already has the five task sets ECS allows (DRAINING ones
    /// count); CreateTaskSet would fail. Delete the stale ones it names.
    TooManyTaskSets => "too many task sets",

    /// The bake is shorter than a gate alarm needs to see a regression
    /// (Period x EvaluationPeriods + evaluation delay). Lengthen the bake or
    /// set `strategy.allowShortBake`.
    BakeTooShort => "bake too short",

    /// The task set a call names does not exist (and is not a retry of a call
    /// that already deleted it).
    TaskSetNotFound => "task set not found",

    /// The new task set did not become ready before its deadline.
    NotReady => "not ready",

    /// A weight change would send traffic to a slot without healthy instances.
    NoHealthyInstances => "no healthy instances",

    /// A gate alarm is (or was, during the bake) in ALARM.
    AlarmFiring => "alarm firing",

    /// An engineer aborted the deployment (`ecs-dns-canary abort`): the CLI
    /// fails the bake's task token with this name and a cause naming the
    /// reason and the caller; the state machine rolls back.
    Aborted => "aborted",

    /// An engineer rejected a deployment waiting for approval
    /// (`ecs-dns-canary reject`): the CLI fails the approval wait's task
    /// token with this name and a cause naming the reason and the caller;
    /// the state machine rolls back.
    Rejected => "rejected",

    /// Deleting this task set would drop traffic (it is PRIMARY, or its slot
    /// still has weight).
    UnsafeDelete => "unsafe delete",

    /// A forward weight change found the records changed between its read
    /// and its conditional write (alarm-rollback moved traffic back, or a
    /// person edited them). Nothing was written; the deployment rolls back.
    WeightsChanged => "weights changed",

    /// CloudWatch kept throttling the alarm gate's reads through the
    /// function's own patient retry (the per-account limits are shared by
    /// every deployment). Nothing was decided; the state machine retries it
    /// on its own patient schedule, apart from `Retryable`.
    Throttled => "throttled",

    /// A transient AWS condition (throttling, 5xx, a Route 53 change still
    /// processing, a change not yet INSYNC). Safe to retry with backoff.
    Retryable => "retryable",

    /// An AWS call failed in a way that retrying will not fix.
    AwsError => "aws error",
}

impl CanaryError {
    /// The stable name the README lists and the state machine may match.
    pub fn error_type(&self) -> &'static str {
        self.kind().as_str()
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidInput(msg.into())
    }

    /// The same error with `extra` appended to its message.
    pub fn with_context(self, extra: &str) -> Self {
        Self::new(self.kind(), format!("{}; {extra}", self.message()))
    }
}

impl std::fmt::Display for CanaryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind().prefix(), self.message())
    }
}

impl std::error::Error for CanaryError {}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<CanaryError> for Diagnostic {
    fn from(err: CanaryError) -> Self {
        Diagnostic {
            error_type: err.error_type().to_string(),
            error_message: err.to_string(),
        }
    }
}

pub type Result<T, E = CanaryError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The names shipped before the list became one macro call: a renamed
    /// variant would silently rename an `error_type` the README, the state
    /// machine and users' alarms depend on.
    const SHIPPED: &[&str] = &[
        "InvalidInput",
        "TargetNotFound",
        "TargetMisconfigured",
        "DeploymentInProgress",
        "TooManyTaskSets",
        "BakeTooShort",
        "TaskSetNotFound",
        "NotReady",
        "NoHealthyInstances",
        "AlarmFiring",
        "UnsafeDelete",
        "WeightsChanged",
        "Throttled",
        "Retryable",
        "AwsError",
    ];

    #[test]
    fn shipped_names_never_change() {
        for name in SHIPPED {
            assert!(
                CanaryError::ALL_TYPES.contains(name),
                "{name} was renamed or removed"
            );
        }
    }

    #[test]
    fn every_kind_round_trips_with_its_name_and_message() {
        let names: Vec<_> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, CanaryError::ALL_TYPES);
        for &kind in ErrorKind::ALL {
            let e = CanaryError::new(kind, "m");
            assert_eq!(e.kind(), kind);
            assert_eq!(e.error_type(), kind.as_str());
            assert_eq!(e.to_string(), format!("{}: m", kind.prefix()));
            assert_eq!(e.with_context("x").message(), "m; x");
        }
    }

    #[test]
    fn display_keeps_the_shipped_prefixes() {
        assert_eq!(
            CanaryError::TargetNotFound("svc".into()).to_string(),
            "not found: svc"
        );
        assert_eq!(
            CanaryError::AwsError("ecs: X".into()).to_string(),
            "aws error: ecs: X"
        );
    }

    #[test]
    fn diagnostic_carries_the_stable_name() {
        let d: Diagnostic = CanaryError::AlarmFiring("api-5xx".into()).into();
        assert_eq!(d.error_type, "AlarmFiring");
        assert!(d.error_message.contains("api-5xx"));
    }
}

#[cfg(test)]
mod readme_tests {
    use super::CanaryError;

    /// The README's error table is the users' reference: every name the
    /// functions can return must be in it.
    #[test]
    fn the_readme_lists_every_error_type() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
            .unwrap_or_default();
        for name in CanaryError::ALL_TYPES {
            assert!(
                readme.contains(&format!("| `{name}` |")),
                "README.md's error table lacks {name}"
            );
        }
    }
}
