//! One adapter per AWS service: each turns SDK calls into the plain views the
//! [`crate::plan`] decisions take, and SDK errors into [`crate::CanaryError`].

pub mod bakes;
pub mod cloudmap;
pub mod cloudwatch;
pub mod ecs;
pub mod route53;
pub mod sfn;

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::CanaryError;

/// Every service crate's `SdkError` is this one type with its own `E`.
pub type SdkError<E> = aws_sdk_ecs::error::SdkError<E, aws_sdk_ecs::config::http::HttpResponse>;

/// Error codes that mean "try again later" on any AWS API we call.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "PriorRequestNotComplete",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalError",
    "InternalServiceError",
    "InternalServerError",
    "ServerException",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// The error code of an SDK error, if the service sent one.
pub fn error_code<E>(err: &SdkError<E>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        aws_sdk_ecs::error::SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    }
}

/// Classifies an SDK error that the call site did not handle itself:
/// transport failures, throttling and 5xx are `Retryable`, the rest `AwsError`.
pub fn classify<E>(operation: &str, err: SdkError<E>) -> CanaryError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            CanaryError::Retryable(format!(
                "{operation}: {}",
                aws_sdk_ecs::error::DisplayErrorContext(&err)
            ))
        }
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown");
            let message = se.err().message().unwrap_or("");
            let is_5xx = se.raw().status().is_server_error();
            if RETRYABLE_CODES.contains(&code) || is_5xx {
                CanaryError::Retryable(format!("{operation}: {code}: {message}"))
            } else {
                CanaryError::AwsError(format!("{operation}: {code}: {message}"))
            }
        }
        _ => CanaryError::AwsError(format!(
            "{operation}: {}",
            aws_sdk_ecs::error::DisplayErrorContext(&err)
        )),
    }
}
