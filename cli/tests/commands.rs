//! The commands against a mocked Step Functions (aws-smithy-mocks): the
//! requests they make and what they make of the answers. Answers are raw
//! response bodies (history fixtures recorded from moto 5.2.5), so the SDK's
//! own deserializer runs as it does against a live endpoint.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sfn::config::http::HttpResponse;
use aws_sdk_sfn::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::DateTime;
use ecs_dns_canary::args::{DeployArgs, FollowArgs, Overrides};
use ecs_dns_canary::event::Outcome;
use ecs_dns_canary::output::{JsonDisplay, PlainDisplay};
use ecs_dns_canary::{deploy, watch, CliError};
use serde_json::{json, Value};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SM: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:ecs-dns-canary";
const EXEC: &str = "arn:aws:states:us-east-1:123456789012:execution:ecs-dns-canary:x";

fn response(status: u16, body: String) -> HttpResponse {
    let status = StatusCode::try_from(status).unwrap_or_else(|_| unreachable!("valid status"));
    HttpResponse::new(status, SdkBody::from(body))
}

fn fixture_events(name: &str) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    Ok(v.get("events")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

fn page(events: &[Value], next_token: Option<&str>) -> String {
    let mut body = json!({ "events": events });
    if let (Some(t), Some(obj)) = (next_token, body.as_object_mut()) {
        obj.insert("nextToken".into(), json!(t));
    }
    body.to_string()
}

/// A deployment file without an image, written where only this test looks.
fn deployment_file(test: &str) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let path =
        std::env::temp_dir().join(format!("ecs-dns-canary-{test}-{}.json", std::process::id()));
    let body = json!({
        "target": {
            "cluster": "demo", "service": "web", "container": "app",
            "hostedZoneId": "Z123", "recordName": "web.internal",
            "slots": {
                "blue": {"setIdentifier": "blue", "registryArn": "arn:aws:servicediscovery:us-east-1:1:service/srv-b", "dnsName": "service-blue.ns"},
                "green": {"setIdentifier": "green", "registryArn": "arn:aws:servicediscovery:us-east-1:1:service/srv-g", "dnsName": "service-green.ns"}
            }
        },
        "strategy": {"steps": [10, 50, 100], "bakeSeconds": 300},
        "alarms": {"names": ["web-5xx"]}
    });
    std::fs::write(&path, serde_json::to_string_pretty(&body)?)?;
    Ok(path)
}

fn deploy_args(file: PathBuf) -> DeployArgs {
    DeployArgs {
        file: Some(file),
        from: None,
        overrides: Overrides {
            image: Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2".into()),
            task_definition: None,
            steps: Some(vec![25, 100]),
            bake: Some(60),
        },
        name: None,
        watch: false,
        dry_run: false,
        follow: FollowArgs {
            poll_ms: 1,
            plain: true,
        },
    }
}

#[tokio::test]
async fn deploy_starts_the_state_machine_with_the_checked_input() -> TestResult {
    let file = deployment_file("deploy")?;
    let args = deploy_args(file.clone());
    let expected_input = json!({
        "target": {
            "cluster": "demo", "service": "web", "container": "app",
            "hostedZoneId": "Z123", "recordName": "web.internal",
            "slots": {
                "blue": {"setIdentifier": "blue", "registryArn": "arn:aws:servicediscovery:us-east-1:1:service/srv-b", "dnsName": "service-blue.ns"},
                "green": {"setIdentifier": "green", "registryArn": "arn:aws:servicediscovery:us-east-1:1:service/srv-g", "dnsName": "service-green.ns"}
            }
        },
        "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2",
        "strategy": {"steps": [25, 100], "bakeSeconds": 60},
        "alarms": {"names": ["web-5xx"], "insufficientData": "pass"}
    });
    let name = "web-v2-20261127T061800Z";
    let start = mock!(Client::start_execution)
        .match_requests(move |r| {
            let input: Option<Value> = r.input().and_then(|i| serde_json::from_str(i).ok());
            r.state_machine_arn() == Some(SM) && r.name() == Some(name) && input.as_ref() == Some(&expected_input)
        })
        .then_http_response(|| {
            response(
                200,
                json!({"executionArn": format!("{SM}:web-v2-20261127T061800Z").replace(":stateMachine:", ":execution:"), "startDate": 1795760280.0}).to_string(),
            )
        });
    let client = mock_client!(aws_sdk_sfn, RuleMode::Sequential, [&start]);

    let started =
        deploy::start(&client, Some(SM), &args, DateTime::from_secs(1_795_760_280)).await?;
    std::fs::remove_file(&file)?;

    assert_eq!(start.num_calls(), 1);
    assert_eq!(started.name, name);
    assert_eq!(
        started.execution_arn.as_deref(),
        Some("arn:aws:states:us-east-1:123456789012:execution:ecs-dns-canary:web-v2-20261127T061800Z")
    );
    assert_eq!(started.start_date.as_deref(), Some("2026-11-27T06:18:00Z"));
    let mut out = Vec::new();
    deploy::print(&mut out, &started, false, false)?;
    assert_eq!(
        String::from_utf8(out)?,
        "arn:aws:states:us-east-1:123456789012:execution:ecs-dns-canary:web-v2-20261127T061800Z\n"
    );
    Ok(())
}

#[tokio::test]
async fn deploy_reports_a_name_taken_by_another_input() -> TestResult {
    let file = deployment_file("taken")?;
    let mut args = deploy_args(file.clone());
    args.name = Some("web-v2".into());
    let start = mock!(Client::start_execution).then_http_response(|| {
        response(
            400,
            json!({"__type": "ExecutionAlreadyExists", "message": "Execution Already Exists: 'web-v2'"}).to_string(),
        )
    });
    let client = mock_client!(aws_sdk_sfn, RuleMode::Sequential, [&start]);
    let result = deploy::start(&client, Some(SM), &args, DateTime::from_secs(0)).await;
    std::fs::remove_file(&file)?;
    assert!(
        matches!(&result, Err(CliError::ExecutionAlreadyExists(n)) if n == "web-v2"),
        "{result:?}"
    );
    assert_eq!(result.err().map(|e| e.exit_code()), Some(4));
    Ok(())
}

#[tokio::test]
async fn deploy_refuses_an_invalid_file_without_calling_aws() -> TestResult {
    let file = deployment_file("invalid")?;
    let mut args = deploy_args(file.clone());
    args.overrides.steps = Some(vec![50, 10]);
    // No rules: any call would fail the test with a different error.
    let client = mock_client!(aws_sdk_sfn, RuleMode::Sequential, &[]);
    let result = deploy::start(&client, Some(SM), &args, DateTime::from_secs(0)).await;
    std::fs::remove_file(&file)?;
    assert!(
        matches!(&result, Err(CliError::InvalidDeployment { reason, .. }) if reason.contains("strictly increasing"))
    );
    assert_eq!(result.err().map(|e| e.exit_code()), Some(3));
    Ok(())
}

#[tokio::test]
async fn watch_follows_new_events_only_and_ends_on_the_failure_cause() -> TestResult {
    let events = fixture_events("history-gate-alarm-rollback.json")?;
    // Three polls, moto style (whole history, oldest first, no paging): the
    // execution grows, then ends FAILED.
    let (a, b) = (events[..20].to_vec(), events[..45].to_vec());
    let all = events.clone();
    let history = mock!(Client::get_execution_history)
        .match_requests(|r| r.execution_arn() == Some(EXEC))
        .sequence()
        .http_response(move || response(200, page(&a, None)))
        .http_response(move || response(200, page(&b, None)))
        .http_response(move || response(200, page(&all, None)))
        .build();
    let client = mock_client!(aws_sdk_sfn, RuleMode::Sequential, [&history]);

    let mut display = PlainDisplay::new(Vec::new());
    let ending = watch::follow(&client, EXEC, Duration::from_millis(1), &mut display).await?;
    let text = String::from_utf8(display.into_inner())?;

    assert_eq!(history.num_calls(), 3);
    assert_eq!(ending.status, Outcome::Failed);
    assert_eq!(ending.error.as_deref(), Some("RolledBackOnAlarm"));
    assert!(ending.cause.as_deref().is_some_and(|c| c
        .starts_with("An alarm fired at step 2 of 3 (50%) (alarm firing: web-5xx was in ALARM")));
    assert_eq!(watch::exit_code(&ending), 1);
    // Each event told once, although polls 2 and 3 repeat the older ones.
    assert_eq!(
        text.matches("step 1/3: weights blue 90 / green 10").count(),
        1,
        "{text}"
    );
    assert_eq!(text.matches("started: ").count(), 1);
    assert!(text.contains("[Check alarms] AlarmFiring: alarm firing: web-5xx was in ALARM"));
    assert!(text.contains(
        "[Roll back traffic] rolled back: weights blue 100 / green 0, primary ecs-svc/111"
    ));
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.contains("  FAILED after 4.2 s: RolledBackOnAlarm: An alarm fired at step 2 of 3"),
        "{last}"
    );
    assert!(last.ends_with(
        "All traffic went back to the blue slot and the new task set ecs-svc/222 was deleted."
    ));
    Ok(())
}

#[tokio::test]
async fn watch_reads_the_history_once_then_only_newest_first_pages() -> TestResult {
    let events = fixture_events("history-success.json")?;
    let newest_first = |range: std::ops::Range<usize>| -> Vec<Value> {
        events[range].iter().rev().cloned().collect()
    };
    // Poll 1: the whole history so far, oldest first, in two pages. Poll 2:
    // newest first, a page with new and already seen events, and a token to
    // older ones that must not be followed.
    let p1 = page(&events[0..40], Some("page-2"));
    let p2 = page(&events[40..60], None);
    let p3 = page(&newest_first(50..events.len()), Some("older"));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    let history = mock!(Client::get_execution_history)
        .match_requests(move |r| {
            if let Ok(mut log) = seen.lock() {
                log.push((
                    r.reverse_order().unwrap_or(false),
                    r.max_results(),
                    r.next_token().map(str::to_string),
                ));
            }
            true
        })
        .sequence()
        .http_response(move || response(200, p1.clone()))
        .http_response(move || response(200, p2.clone()))
        .http_response(move || response(200, p3.clone()))
        .build();
    let client = mock_client!(aws_sdk_sfn, RuleMode::Sequential, [&history]);

    let mut display = JsonDisplay::new(Vec::new());
    let ending = watch::follow(&client, EXEC, Duration::from_millis(1), &mut display).await?;
    let lines: Vec<Value> = String::from_utf8(display.into_inner())?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;

    let log = requests.lock().map_err(|e| e.to_string())?.clone();
    assert_eq!(
        log,
        vec![
            (false, Some(1000), None),
            (false, Some(1000), Some("page-2".to_string())),
            (true, Some(25), None),
        ]
    );
    assert_eq!(ending.status, Outcome::Succeeded);
    assert_eq!(watch::exit_code(&ending), 0);
    // Every event told at most once, in order.
    let ids: Vec<i64> = lines
        .iter()
        .filter_map(|l| l.get("event").and_then(Value::as_i64))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] <= w[1]), "{ids:?}");
    let weights: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("kind") == Some(&json!("weights")))
        .collect();
    assert_eq!(weights.len(), 4, "three steps and the promotion");
    assert_eq!(
        weights.first().and_then(|w| w.get("green")),
        Some(&json!(10))
    );
    assert_eq!(
        weights.last().and_then(|w| w.get("role")),
        Some(&json!("promote"))
    );
    let last = lines.last().ok_or("no output")?;
    assert_eq!(last.get("kind"), Some(&json!("ended")));
    assert_eq!(last.get("status"), Some(&json!("SUCCEEDED")));
    Ok(())
}

#[tokio::test]
async fn watch_names_a_missing_execution() -> TestResult {
    let history = mock!(Client::get_execution_history).then_http_response(|| {
        response(
            400,
            json!({"__type": "ExecutionDoesNotExist", "message": "Execution Does Not Exist"})
                .to_string(),
        )
    });
    let client = mock_client!(aws_sdk_sfn, RuleMode::Sequential, [&history]);
    let mut display = PlainDisplay::new(Vec::new());
    let result = watch::follow(&client, EXEC, Duration::from_millis(1), &mut display).await;
    assert!(matches!(result, Err(CliError::ExecutionNotFound(arn)) if arn == EXEC));
    Ok(())
}
