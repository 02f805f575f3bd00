//! Test helper: history fixtures recorded from moto 5.2.5 (the raw
//! GetExecutionHistory response bodies) go through the SDK's own
//! deserializer and [`crate::sfn::all_events`], exactly like a live answer.

use aws_sdk_sfn::config::http::HttpResponse;
use aws_sdk_sfn::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_types::body::SdkBody;

use crate::event::Event;

pub fn fixture_text(name: &str) -> Result<String, String> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))
}

pub fn http_ok(body: String) -> HttpResponse {
    HttpResponse::new(
        aws_smithy_runtime_api::http::StatusCode::try_from(200u16)
            .unwrap_or_else(|_| unreachable!()),
        SdkBody::from(body),
    )
}

/// The fixture's events, as `all_events` returns them.
pub async fn load(name: &str) -> Result<Vec<Event>, String> {
    load_body(fixture_text(name)?).await
}

/// Events from a GetExecutionHistory response body.
pub async fn load_body(body: String) -> Result<Vec<Event>, String> {
    let rule =
        mock!(Client::get_execution_history).then_http_response(move || http_ok(body.clone()));
    let client = mock_client!(aws_sdk_sfn, RuleMode::Sequential, [&rule]);
    crate::sfn::all_events(
        &client,
        "arn:aws:states:us-east-1:123456789012:execution:ecs-dns-canary:x",
    )
    .await
    .map_err(|e| e.to_string())
}
