//! What can go wrong in the CLI itself (not in a deployment: a deployment that
//! fails is an execution outcome, reported by `watch` with exit code 1).
//! Every variant names its cause, says what to do in [`CliError::help`], and
//! maps to one of the documented exit codes.

use std::path::PathBuf;

use aws_sdk_sfn::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Exit code: the command worked (for `watch`: the execution SUCCEEDED).
pub const EXIT_OK: u8 = 0;
/// Exit code: the watched execution ended FAILED, TIMED_OUT or ABORTED.
pub const EXIT_EXECUTION_FAILED: u8 = 1;
/// Exit code: the command line is wrong (clap uses 2 as well).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the deployment file or the execution name is invalid; nothing was started.
pub const EXIT_INVALID_DEPLOYMENT: u8 = 3;
/// Exit code: a Step Functions call failed (credentials, network, not found, ...).
pub const EXIT_AWS: u8 = 4;
/// Exit code: `abort` changed nothing (the deployment is promoting or
/// promoted, already rolling back, or has ended), or `promote` found no
/// bake to end.
pub const EXIT_NOT_ABORTED: u8 = 5;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The deployment file could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The deployment file (with the command-line overrides applied) is not a
    /// valid `DeploymentRequest`. Nothing was sent to AWS.
    #[error("invalid deployment {path}: {reason}")]
    InvalidDeployment { path: PathBuf, reason: String },

    /// The execution name given with `--name` is not one Step Functions accepts.
    #[error("invalid execution name {name:?}: {reason}")]
    InvalidExecutionName { name: String, reason: String },

    /// The command needs the state machine and none was given.
    #[error("no state machine given")]
    StateMachineMissing,

    /// No state machine has this ARN or name.
    #[error("state machine not found: {0}")]
    StateMachineNotFound(String),

    /// No execution has this ARN (or name, under the given state machine).
    #[error("execution not found: {0}")]
    ExecutionNotFound(String),

    /// An execution with this name exists with a different input (Step
    /// Functions treats the same name and input as the same start).
    #[error("an execution named {0:?} already exists with a different input")]
    ExecutionAlreadyExists(String),

    /// `deploy --from`: the execution named deployed no task definition
    /// (its create-taskset refused, or its history has no such answer).
    #[error("execution {0} deployed no task definition to deploy again")]
    NothingToRedeploy(String),

    /// A Step Functions call failed for another reason.
    #[error("{operation} failed: {message}")]
    Aws {
        operation: &'static str,
        code: Option<String>,
        message: String,
    },

    /// Writing the output failed (closed pipe, full disk).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl CliError {
    /// The documented exit code (see README).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::ReadFile { .. }
            | Self::InvalidDeployment { .. }
            | Self::InvalidExecutionName { .. }
            | Self::NothingToRedeploy(_) => EXIT_INVALID_DEPLOYMENT,
            Self::StateMachineMissing => EXIT_USAGE,
            Self::StateMachineNotFound(_)
            | Self::ExecutionNotFound(_)
            | Self::ExecutionAlreadyExists(_)
            | Self::Aws { .. }
            | Self::Output(_) => EXIT_AWS,
        }
    }

    /// What the user can do about it.
    pub fn help(&self) -> Option<&'static str> {
        match self {
            Self::ReadFile { .. } => Some("check the path given with --file"),
            Self::InvalidDeployment { .. } => {
                Some("fix the file (camelCase fields, see the README's example) or the flags that override it")
            }
            Self::InvalidExecutionName { .. } => {
                Some("use 1 to 80 characters from A-Z a-z 0-9 - _, or leave --name out to derive one")
            }
            Self::StateMachineMissing => {
                Some("pass --state-machine-arn <arn|name> or set CANARY_STATE_MACHINE_ARN, or give a full execution ARN")
            }
            Self::StateMachineNotFound(_) => {
                Some("check --state-machine-arn, --region and --endpoint-url (the stack's output names the ARN)")
            }
            Self::ExecutionNotFound(_) => Some("`ecs-dns-canary list` shows the recent executions"),
            Self::NothingToRedeploy(_) => {
                Some("pick an execution that created its task set (`ecs-dns-canary history NAME` shows it)")
            }
            Self::ExecutionAlreadyExists(_) => {
                Some("pick another --name, or leave it out to derive a fresh one from the current time")
            }
            Self::Aws { .. } => {
                Some("check credentials (default chain), --region and --endpoint-url / AWS_ENDPOINT_URL")
            }
            Self::Output(_) => None,
        }
    }

    /// Maps an SDK error to a variant, keeping the service's error code.
    pub fn from_sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let code = err.code().map(str::to_string);
        let message = match err.message() {
            Some(m) => m.to_string(),
            None => DisplayErrorContext(&err).to_string(),
        };
        Self::Aws {
            operation,
            code,
            message,
        }
    }

    /// The service error code, when the error came from Step Functions.
    pub fn aws_code(&self) -> Option<&str> {
        match self {
            Self::Aws { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_readme() {
        let invalid = CliError::InvalidDeployment {
            path: "d.json".into(),
            reason: "x".into(),
        };
        assert_eq!(invalid.exit_code(), 3);
        assert_eq!(CliError::StateMachineMissing.exit_code(), 2);
        assert_eq!(CliError::ExecutionNotFound("x".into()).exit_code(), 4);
        assert!(CliError::StateMachineMissing.help().is_some());
    }
}
