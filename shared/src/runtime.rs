//! Start-up of a function: structured logging, settings read once from the
//! environment, SDK clients built once. Handlers receive these; they never
//! read the environment themselves.

use std::time::Duration;

/// The SDK clients every handler works with.
#[derive(Debug, Clone)]
pub struct Clients {
    pub ecs: aws_sdk_ecs::Client,
    pub route53: aws_sdk_route53::Client,
    pub cloudmap: aws_sdk_servicediscovery::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sfn: aws_sdk_sfn::Client,
    /// The bake registry (see [`crate::aws::bakes`]).
    pub dynamodb: aws_sdk_dynamodb::Client,
}

impl Clients {
    /// Builds every client from one shared config (default credential chain,
    /// `AWS_ENDPOINT_URL` honoured, so the same binary runs against moto).
    pub async fn from_env() -> Self {
        let config = aws_config::load_from_env().await;
        Self::from_config(&config)
    }

    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Self {
            ecs: aws_sdk_ecs::Client::new(config),
            route53: aws_sdk_route53::Client::new(config),
            cloudmap: aws_sdk_servicediscovery::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            sfn: aws_sdk_sfn::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
        }
    }
}

/// Settings that come from the function's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Interval between `GetChange` polls. Route 53 allows 5 calls/s per
    /// account across all its APIs, so poll sparingly.
    pub insync_poll: Duration,
    /// Give up waiting for INSYNC after this long (the change still applies;
    /// the call then fails `Retryable` and a retry finds the weights set).
    pub insync_timeout: Duration,
    /// The state machine whose executions the alarm-rollback function serves.
    pub state_machine_arn: Option<String>,
    /// Where the repair function records its outcomes (`REPAIRS_STATE_MACHINE_ARN`;
    /// default: the state machine's ARN + `-repairs`).
    pub repairs_state_machine_arn: Option<String>,
    /// How the alarm gate spaces its CloudWatch calls and waits out throttling.
    pub cloudwatch: crate::aws::cloudwatch::Pacing,
    /// The bake registry's DynamoDB table (`BAKE_TABLE`): check-health
    /// records each bake there, alarm-rollback looks bakes up by alarm name.
    /// Unset: nothing is recorded and alarm-rollback scans the running
    /// executions' histories (the fallback).
    pub bake_table: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            insync_poll: Duration::from_secs(2),
            insync_timeout: Duration::from_secs(120),
            state_machine_arn: None,
            repairs_state_machine_arn: None,
            cloudwatch: crate::aws::cloudwatch::Pacing::default(),
            bake_table: None,
        }
    }
}

impl Settings {
    /// Reads `CANARY_INSYNC_POLL_MS`, `CANARY_INSYNC_TIMEOUT_S`,
    /// `STATE_MACHINE_ARN` and `BAKE_TABLE`; anything absent or unparsable keeps its default.
    pub fn from_env() -> Self {
        let mut s = Self::default();
        if let Some(ms) = env_u64("CANARY_INSYNC_POLL_MS") {
            s.insync_poll = Duration::from_millis(ms);
        }
        if let Some(secs) = env_u64("CANARY_INSYNC_TIMEOUT_S") {
            s.insync_timeout = Duration::from_secs(secs);
        }
        s.state_machine_arn = std::env::var("STATE_MACHINE_ARN")
            .ok()
            .filter(|v| !v.is_empty());
        s.repairs_state_machine_arn = std::env::var("REPAIRS_STATE_MACHINE_ARN")
            .ok()
            .filter(|v| !v.is_empty());
        s.bake_table = std::env::var("BAKE_TABLE").ok().filter(|v| !v.is_empty());
        s
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

/// Everything a handler needs, built once per cold start.
#[derive(Debug, Clone)]
pub struct Context {
    pub clients: Clients,
    pub settings: Settings,
}

impl Context {
    pub async fn from_env() -> Self {
        Self {
            clients: Clients::from_env().await,
            settings: Settings::from_env(),
        }
    }
}

/// Structured logs: JSON when Lambda asks for it (`AWS_LAMBDA_LOG_FORMAT=JSON`),
/// level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`.
pub fn init_logging() {
    lambda_runtime::tracing::init_default_subscriber();
}
