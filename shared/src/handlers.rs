//! One handler per Lambda function. Each takes the raw JSON payload (so a
//! malformed one is our named `InvalidInput`, not the runtime's type-path
//! error), runs, and logs the outcome with its `error_type`.

pub mod alarm_rollback;
pub mod check_health;
pub mod create_taskset;
pub mod delete_taskset;
pub mod repair;
pub mod set_weight;
pub mod traffic;

use lambda_runtime::Diagnostic;
use serde::de::DeserializeOwned;
use tracing::{error, info};

use crate::{CanaryError, Result};

/// The AWS actions one function may call: what its IAM role must grant,
/// no more. Declared here, once, for the contract file
/// (`contract/contract.json`) that the IAM tests of `tests/infra` read.
#[derive(Debug, Clone, Copy)]
pub struct AwsActions {
    /// The function's name (folder, binary, SAM `BuildProperties.Binary`).
    pub function: &'static str,
    /// Actions a clean deployment makes (checked against the calls of the
    /// local runs in `tests/reliability/calls.json`).
    pub calls: &'static [&'static str],
    /// Actions made only on an error path, each with the reason.
    pub error_path_calls: &'static [(&'static str, &'static str)],
}

/// Every function and the AWS actions it may call (`service:Action`, as
/// IAM spells them). Each action is one that an adapter in [`crate::aws`]
/// names in its `classify(...)`; the contract test checks both ways.
pub const AWS_ACTIONS: &[AwsActions] = &[
    AwsActions {
        function: "create-taskset",
        calls: &[
            "cloudwatch:DescribeAlarmHistory",
            "cloudwatch:DescribeAlarms",
            "ecs:CreateTaskSet",
            "ecs:DescribeServices",
            "ecs:DescribeTaskDefinition",
            "ecs:RegisterTaskDefinition",
            "route53:ChangeResourceRecordSets",
            "route53:ListResourceRecordSets",
            "servicediscovery:GetNamespace",
            "servicediscovery:GetService",
        ],
        error_path_calls: &[(
            "ecs:DeleteTaskSet",
            "an overlapping deployment created its task set first: this one deletes its own",
        )],
    },
    AwsActions {
        function: "check-health",
        calls: &[
            "cloudwatch:DescribeAlarmHistory",
            "cloudwatch:DescribeAlarms",
            "dynamodb:PutItem",
            "ecs:DescribeTaskSets",
            "servicediscovery:GetInstancesHealthStatus",
            "servicediscovery:GetService",
            "servicediscovery:ListInstances",
            "servicediscovery:ListOperations",
        ],
        error_path_calls: &[],
    },
    AwsActions {
        function: "set-weight",
        calls: &[
            "cloudwatch:DescribeAlarmHistory",
            "cloudwatch:DescribeAlarms",
            "dynamodb:DeleteItem",
            "dynamodb:PutItem",
            "ecs:DescribeTaskSets",
            "ecs:UpdateServicePrimaryTaskSet",
            "route53:ChangeResourceRecordSets",
            "route53:GetChange",
            "route53:ListResourceRecordSets",
            "servicediscovery:GetInstancesHealthStatus",
            "servicediscovery:GetService",
            "servicediscovery:ListInstances",
        ],
        error_path_calls: &[],
    },
    AwsActions {
        function: "delete-taskset",
        calls: &[
            "ecs:DeleteTaskSet",
            "ecs:DescribeTaskSets",
            "route53:ListResourceRecordSets",
        ],
        error_path_calls: &[],
    },
    AwsActions {
        function: "alarm-rollback",
        calls: &[
            "dynamodb:DeleteItem",
            "dynamodb:Query",
            "route53:ChangeResourceRecordSets",
            "route53:ListResourceRecordSets",
            "servicediscovery:GetInstancesHealthStatus",
            "servicediscovery:GetService",
            "servicediscovery:ListInstances",
            "states:SendTaskFailure",
            "states:SendTaskHeartbeat",
        ],
        error_path_calls: &[
            (
                "states:ListExecutions",
                "the fallback when the bake table cannot be read: scan the running executions",
            ),
            (
                "states:GetExecutionHistory",
                "the fallback when the bake table cannot be read: each running execution's open bake",
            ),
        ],
    },
    AwsActions {
        function: "repair",
        calls: &[
            "ecs:DeleteTaskSet",
            "ecs:DescribeTaskSets",
            "route53:ChangeResourceRecordSets",
            "route53:GetChange",
            "route53:ListResourceRecordSets",
            "servicediscovery:GetInstancesHealthStatus",
            "servicediscovery:GetService",
            "servicediscovery:ListInstances",
            "states:DescribeExecution",
            "states:GetExecutionHistory",
            "states:ListExecutions",
            "states:StartExecution",
        ],
        error_path_calls: &[
            (
                "ecs:DescribeServices",
                "only a failed first deployment's clean-up reads the service",
            ),
            (
                "ecs:UpdateServicePrimaryTaskSet",
                "only an execution stopped after its promotion marked the new task set PRIMARY: \
                 the old one is marked PRIMARY again",
            ),
        ],
    },
];

/// Parses a payload into a request type; any mismatch is `InvalidInput`.
pub fn parse<T: DeserializeOwned>(payload: serde_json::Value) -> Result<T> {
    serde_json::from_value(payload).map_err(|e| CanaryError::invalid(e.to_string()))
}

/// Logs the outcome and converts our error to the runtime's `Diagnostic`.
pub fn respond<T>(function: &str, outcome: Result<T>) -> Result<T, Diagnostic> {
    match outcome {
        Ok(v) => {
            info!(function, "done");
            Ok(v)
        }
        Err(e) => {
            error!(function, error_type = e.error_type(), error = %e, "failed");
            Err(e.into())
        }
    }
}
