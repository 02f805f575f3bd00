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
