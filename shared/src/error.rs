//! The one error type of the engine. Every variant maps to a stable
//! `error_type` string: the state machine matches these names in its
//! `Retry`/`Catch` rules and the README lists them, so a name, once shipped,
//! never changes.

use lambda_runtime::Diagnostic;

/// What went wrong, named for the cause. Messages say what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CanaryError {
    /// The input is malformed or contradicts itself. Nothing was changed.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A resource named by the input (cluster, service, hosted zone, record,
    /// Cloud Map service, task definition) does not exist.
    #[error("not found: {0}")]
    TargetNotFound(String),

    /// The resources exist but are not shaped the way a deployment needs
    /// (records not weighted CNAMEs, set identifiers swapped, TTLs differing,
    /// service not on the EXTERNAL deployment controller, ...).
    #[error("target misconfigured: {0}")]
    TargetMisconfigured(String),

    /// Another deployment of this service is under way (a second task set
    /// exists or traffic is split). Wait for it, or roll it back.
    #[error("deployment in progress: {0}")]
    DeploymentInProgress(String),

    /// The service already has the five task sets ECS allows (DRAINING ones
    /// count); CreateTaskSet would fail. Delete the stale ones it names.
    #[error("too many task sets: {0}")]
    TooManyTaskSets(String),

    /// The bake is shorter than a gate alarm needs to see a regression
    /// (Period x EvaluationPeriods + evaluation delay). Lengthen the bake or
    /// set `strategy.allowShortBake`.
    #[error("bake too short: {0}")]
    BakeTooShort(String),

    /// The task set a call names does not exist (and is not a retry of a call
    /// that already deleted it).
    #[error("task set not found: {0}")]
    TaskSetNotFound(String),

    /// The new task set did not become ready before its deadline.
    #[error("not ready: {0}")]
    NotReady(String),

    /// A weight change would send traffic to a slot without healthy instances.
    #[error("no healthy instances: {0}")]
    NoHealthyInstances(String),

    /// A gate alarm is (or was, during the bake) in ALARM.
    #[error("alarm firing: {0}")]
    AlarmFiring(String),

    /// An engineer aborted the deployment (`ecs-dns-canary abort`): the CLI
    /// fails the bake's task token with this name and a cause naming the
    /// reason and the caller; the state machine rolls back.
    #[error("aborted: {0}")]
    Aborted(String),

    /// Deleting this task set would drop traffic (it is PRIMARY, or its slot
    /// still has weight).
    #[error("unsafe delete: {0}")]
    UnsafeDelete(String),

    /// A forward weight change found the records changed between its read
    /// and its conditional write (alarm-rollback moved traffic back, or a
    /// person edited them). Nothing was written; the deployment rolls back.
    #[error("weights changed: {0}")]
    WeightsChanged(String),

    /// CloudWatch kept throttling the alarm gate's reads through the
    /// function's own patient retry (the per-account limits are shared by
    /// every deployment). Nothing was decided; the state machine retries it
    /// on its own patient schedule, apart from `Retryable`.
    #[error("throttled: {0}")]
    Throttled(String),

    /// A transient AWS condition (throttling, 5xx, a Route 53 change still
    /// processing, a change not yet INSYNC). Safe to retry with backoff.
    #[error("retryable: {0}")]
    Retryable(String),

    /// An AWS call failed in a way that retrying will not fix.
    #[error("aws error: {0}")]
    AwsError(String),
}

impl CanaryError {
    /// Every `error_type` the functions can return, in README order.
    pub const ALL_TYPES: &'static [&'static str] = &[
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
        "Aborted",
        "UnsafeDelete",
        "WeightsChanged",
        "Throttled",
        "Retryable",
        "AwsError",
    ];

    /// The stable name the state machine matches.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => "InvalidInput",
            Self::TargetNotFound(_) => "TargetNotFound",
            Self::TargetMisconfigured(_) => "TargetMisconfigured",
            Self::DeploymentInProgress(_) => "DeploymentInProgress",
            Self::TooManyTaskSets(_) => "TooManyTaskSets",
            Self::BakeTooShort(_) => "BakeTooShort",
            Self::TaskSetNotFound(_) => "TaskSetNotFound",
            Self::NotReady(_) => "NotReady",
            Self::NoHealthyInstances(_) => "NoHealthyInstances",
            Self::AlarmFiring(_) => "AlarmFiring",
            Self::Aborted(_) => "Aborted",
            Self::UnsafeDelete(_) => "UnsafeDelete",
            Self::WeightsChanged(_) => "WeightsChanged",
            Self::Throttled(_) => "Throttled",
            Self::Retryable(_) => "Retryable",
            Self::AwsError(_) => "AwsError",
        }
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidInput(msg.into())
    }

    /// The same error with `extra` appended to its message.
    pub fn with_context(self, extra: &str) -> Self {
        let add = |m: String| format!("{m}; {extra}");
        match self {
            Self::InvalidInput(m) => Self::InvalidInput(add(m)),
            Self::TargetNotFound(m) => Self::TargetNotFound(add(m)),
            Self::TargetMisconfigured(m) => Self::TargetMisconfigured(add(m)),
            Self::DeploymentInProgress(m) => Self::DeploymentInProgress(add(m)),
            Self::TooManyTaskSets(m) => Self::TooManyTaskSets(add(m)),
            Self::BakeTooShort(m) => Self::BakeTooShort(add(m)),
            Self::TaskSetNotFound(m) => Self::TaskSetNotFound(add(m)),
            Self::NotReady(m) => Self::NotReady(add(m)),
            Self::NoHealthyInstances(m) => Self::NoHealthyInstances(add(m)),
            Self::AlarmFiring(m) => Self::AlarmFiring(add(m)),
            Self::Aborted(m) => Self::Aborted(add(m)),
            Self::UnsafeDelete(m) => Self::UnsafeDelete(add(m)),
            Self::WeightsChanged(m) => Self::WeightsChanged(add(m)),
            Self::Throttled(m) => Self::Throttled(add(m)),
            Self::Retryable(m) => Self::Retryable(add(m)),
            Self::AwsError(m) => Self::AwsError(add(m)),
        }
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

    #[test]
    fn every_variant_has_a_listed_name() {
        let samples = [
            CanaryError::InvalidInput(String::new()),
            CanaryError::TargetNotFound(String::new()),
            CanaryError::TargetMisconfigured(String::new()),
            CanaryError::DeploymentInProgress(String::new()),
            CanaryError::TooManyTaskSets(String::new()),
            CanaryError::BakeTooShort(String::new()),
            CanaryError::TaskSetNotFound(String::new()),
            CanaryError::NotReady(String::new()),
            CanaryError::NoHealthyInstances(String::new()),
            CanaryError::AlarmFiring(String::new()),
            CanaryError::Aborted(String::new()),
            CanaryError::UnsafeDelete(String::new()),
            CanaryError::WeightsChanged(String::new()),
            CanaryError::Throttled(String::new()),
            CanaryError::Retryable(String::new()),
            CanaryError::AwsError(String::new()),
        ];
        let names: Vec<_> = samples.iter().map(CanaryError::error_type).collect();
        assert_eq!(names, CanaryError::ALL_TYPES);
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
