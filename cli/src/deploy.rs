//! `deploy`: read the deployment file, apply the command-line overrides,
//! check it with the engine's own types before AWS sees it, name the
//! execution and start it.

use std::io::Write;
use std::path::{Path, PathBuf};

use aws_sdk_sfn::Client;
use aws_smithy_types::DateTime;
use canary_engine::model::DeploymentRequest;
use serde::Serialize;
use serde_json::Value;

use crate::args::{DeployArgs, Overrides};
use crate::error::{CliError, Result};
use crate::history::short_name;
use crate::output::print_json;
use crate::time::rfc3339;

/// Step Functions' limit on execution names.
pub const MAX_NAME: usize = 80;

/// Parses the file text as a `DeploymentRequest` (unknown fields refused),
/// applies the overrides and checks what the engine would refuse anyway.
pub fn prepare(path: &Path, text: &str, o: &Overrides) -> Result<DeploymentRequest> {
    let invalid = |reason: String| CliError::InvalidDeployment {
        path: path.to_path_buf(),
        reason,
    };
    let v: Value = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let req: DeploymentRequest =
        serde_json::from_value(apply(v, o)).map_err(|e| invalid(e.to_string()))?;
    check(&req).map_err(invalid)?;
    Ok(req)
}

/// The overrides on the deployment JSON, before it is parsed (so `plan`
/// can hand the engine the exact payload and get the engine's own
/// `error_type` for a bad one). `image` and `taskDefinition` replace each
/// other; `steps` and `bakeSeconds` go into `strategy`. A document that is
/// not an object is returned as it is, for the parser to refuse.
pub fn apply(mut v: Value, o: &Overrides) -> Value {
    let Some(obj) = v.as_object_mut() else {
        return v;
    };
    if let Some(image) = &o.image {
        obj.insert("image".into(), image.clone().into());
        obj.remove("taskDefinition");
    }
    if let Some(td) = &o.task_definition {
        obj.insert("taskDefinition".into(), td.clone().into());
        obj.remove("image");
    }
    if o.steps.is_some() || o.bake.is_some() {
        let strategy = obj
            .entry("strategy")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Some(s) = strategy.as_object_mut() {
            if let Some(steps) = &o.steps {
                s.insert("steps".into(), steps.clone().into());
            }
            if let Some(bake) = o.bake {
                s.insert("bakeSeconds".into(), bake.into());
            }
        }
    }
    v
}

/// The checks that need no AWS call: the engine's own validation, so the
/// CLI and `create-taskset` can never disagree. (The engine checks again,
/// and checks the resources themselves.)
fn check(req: &DeploymentRequest) -> std::result::Result<(), String> {
    if req.image.is_none() && req.task_definition.is_none() {
        return Err("no image: give --image (or --task-definition), or `image` in the file".into());
    }
    canary_engine::plan::validate_request(req).map_err(|e| e.to_string())
}

/// `<service>-<tag>-<yyyymmddThhmmssZ>`: readable, the same for the same
/// deployment in the same second (Step Functions treats a repeated start with
/// the same name and input as one), different otherwise. Only `A-Za-z0-9-_`
/// (names with other characters break CloudWatch Logs), at most 80.
pub fn derive_name(req: &DeploymentRequest, now: DateTime) -> String {
    let service = sanitize(&short_name(&req.target.service));
    let version = match (&req.image, &req.task_definition) {
        (Some(image), _) => sanitize(&image_tag(image)),
        (None, Some(td)) => sanitize(&short_name(td)),
        (None, None) => String::new(),
    };
    let stamp = compact_utc(now);
    // Room for the two parts around the stamp and the two dashes.
    let room = MAX_NAME - stamp.len() - 2;
    let version = cut(&version, room.saturating_sub(service.len().min(room / 2)));
    let service = cut(&service, room - version.len());
    [service.as_str(), version.as_str(), stamp.as_str()]
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("-")
}

/// The tag of an image reference; `sha256-<12 hex>` for a digest; `latest` if none.
pub fn image_tag(image: &str) -> String {
    if let Some((_, digest)) = image.split_once('@') {
        let hex = digest.split_once(':').map(|(_, h)| h).unwrap_or(digest);
        return format!("sha256-{}", hex.chars().take(12).collect::<String>());
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if !tag.is_empty() => tag.to_string(),
        _ => "latest".to_string(),
    }
}

/// `20261127T061800Z`.
fn compact_utc(t: DateTime) -> String {
    let iso = rfc3339(t);
    let head = iso.get(..19).unwrap_or(&iso);
    format!("{}Z", head.replace(['-', ':'], ""))
}

/// Keeps `A-Za-z0-9_`, turns runs of anything else into one `-`, trims dashes.
fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// At most `max` bytes of an ASCII string, without a trailing dash.
fn cut(s: &str, max: usize) -> String {
    s.get(..max.min(s.len()))
        .unwrap_or(s)
        .trim_end_matches('-')
        .to_string()
}

/// Refuses a `--name` Step Functions would refuse (or CloudWatch Logs mangle).
pub fn check_name(name: &str) -> Result<()> {
    let bad_char = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'));
    let reason = if name.is_empty() || name.len() > MAX_NAME {
        format!("must be 1 to {MAX_NAME} characters, not {}", name.len())
    } else if let Some(c) = bad_char {
        format!("character {c:?} is not allowed")
    } else {
        return Ok(());
    };
    Err(CliError::InvalidExecutionName {
        name: name.to_string(),
        reason,
    })
}

/// What `deploy` prints (`--json`) and returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    /// The execution input sent (or, with --dry-run, that would be sent).
    pub input: Value,
}

/// The request as execution input, unset fields left out (not `null`), so the
/// input in the console reads like the file.
pub fn execution_input(req: &DeploymentRequest) -> Result<Value> {
    fn strip(v: Value) -> Value {
        match v {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k, strip(v)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.into_iter().map(strip).collect()),
            other => other,
        }
    }
    let v = serde_json::to_value(req).map_err(std::io::Error::other)?;
    Ok(strip(v))
}

/// Validates, names and (unless `dry_run`) starts the execution.
pub async fn start(
    client: &Client,
    state_machine_arn: Option<&str>,
    args: &DeployArgs,
    now: DateTime,
) -> Result<Started> {
    let mut overrides = args.overrides.clone();
    let (path, text) = match (&args.file, &args.from) {
        (Some(file), from) => {
            let text = std::fs::read_to_string(file).map_err(|source| CliError::ReadFile {
                path: file.clone(),
                source,
            })?;
            if let Some(from) = from {
                let earlier = earlier_deployment(client, from, state_machine_arn).await?;
                overrides.task_definition = Some(earlier.task_definition_arn);
            }
            (file.clone(), text)
        }
        (None, Some(from)) => {
            let earlier = earlier_deployment(client, from, state_machine_arn).await?;
            overrides.task_definition = Some(earlier.task_definition_arn);
            (PathBuf::from(format!("the input of {from}")), earlier.input)
        }
        (None, None) => {
            return Err(CliError::InvalidDeployment {
                path: PathBuf::from("-"),
                reason: "give --file, or --from an earlier execution".into(),
            })
        }
    };
    let request = prepare(&path, &text, &overrides)?;
    let name = match &args.name {
        Some(n) => {
            check_name(n)?;
            n.clone()
        }
        None => derive_name(&request, now),
    };
    let input = execution_input(&request)?;
    if args.dry_run {
        return Ok(Started {
            name,
            execution_arn: None,
            start_date: None,
            input,
        });
    }
    let sm = crate::sfn::state_machine_arn(client, state_machine_arn).await?;
    let body = serde_json::to_string(&input).map_err(std::io::Error::other)?;
    let out = client
        .start_execution()
        .state_machine_arn(&sm)
        .name(&name)
        .input(body)
        .send()
        .await
        .map_err(|e| {
            let err = CliError::from_sdk("StartExecution", e);
            match err.aws_code() {
                Some("ExecutionAlreadyExists") => CliError::ExecutionAlreadyExists(name.clone()),
                Some("StateMachineDoesNotExist") => CliError::StateMachineNotFound(sm.clone()),
                _ => err,
            }
        })?;
    Ok(Started {
        name,
        execution_arn: Some(out.execution_arn().to_string()),
        start_date: Some(rfc3339(*out.start_date())),
        input,
    })
}

/// What `deploy --from` takes from an earlier execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlierDeployment {
    /// The task definition its create-taskset answered (registered or reused).
    pub task_definition_arn: String,
    /// Its execution input (JSON text): the target, strategy and alarms.
    pub input: String,
}

/// Reads, from an execution's history, its input and the task definition
/// its create-taskset step deployed (the `Deployment` answer). An execution
/// whose create-taskset refused deployed nothing: `NothingToRedeploy`.
pub fn earlier_from_events(
    execution: &str,
    events: &[crate::event::Event],
) -> Result<EarlierDeployment> {
    use crate::event::TaskResult;
    let input = events
        .iter()
        .find(|e| e.kind == "ExecutionStarted")
        .and_then(|e| e.input.clone());
    let deployed = events
        .iter()
        .filter(|e| e.kind == "TaskSucceeded")
        .filter_map(|e| e.output.as_deref())
        .find_map(|out| match TaskResult::from_output(out) {
            TaskResult::Deployment(d) => Some(d.task_definition_arn),
            _ => None,
        });
    match (input, deployed) {
        (Some(input), Some(task_definition_arn)) => Ok(EarlierDeployment {
            task_definition_arn,
            input,
        }),
        _ => Err(CliError::NothingToRedeploy(execution.to_string())),
    }
}

async fn earlier_deployment(
    client: &Client,
    execution: &str,
    state_machine_arn: Option<&str>,
) -> Result<EarlierDeployment> {
    let arn = crate::sfn::resolve_execution(client, execution, state_machine_arn).await?;
    let events = crate::sfn::all_events(client, &arn).await?;
    earlier_from_events(execution, &events)
}

/// Prints what was started: the ARN alone (easy to capture in a script), or JSON.
pub fn print(out: &mut dyn Write, started: &Started, json: bool, dry_run: bool) -> Result<()> {
    if json {
        return print_json(out, started);
    }
    if dry_run {
        writeln!(out, "execution name: {}", started.name)?;
        return print_json(out, &started.input);
    }
    match &started.execution_arn {
        Some(arn) => writeln!(out, "{arn}")?,
        None => writeln!(out, "{}", started.name)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[tokio::test]
    async fn from_reads_the_task_definition_and_input_an_execution_deployed(
    ) -> std::result::Result<(), String> {
        let events = crate::fixtures::load("history-success.json").await?;
        let earlier = earlier_from_events("web-v2", &events).map_err(|e| e.to_string())?;
        assert_eq!(
            earlier.task_definition_arn,
            "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2"
        );
        let input: Value = serde_json::from_str(&earlier.input).map_err(|e| e.to_string())?;
        assert!(input.get("target").is_some(), "{input}");
        // The input goes through the same overrides and checks as a file.
        let o = Overrides {
            task_definition: Some(earlier.task_definition_arn.clone()),
            steps: Some(vec![100]),
            bake: Some(0),
            ..Overrides::default()
        };
        let req = prepare(Path::new("earlier"), &earlier.input, &o).map_err(|e| e.to_string())?;
        assert_eq!(
            (req.image, req.task_definition.as_deref()),
            (
                None,
                Some("arn:aws:ecs:us-east-1:123456789012:task-definition/web:2")
            )
        );
        assert_eq!(req.strategy.steps, Some(vec![100]));
        Ok(())
    }

    #[tokio::test]
    async fn from_an_execution_that_deployed_nothing_is_refused() -> std::result::Result<(), String>
    {
        let events = crate::fixtures::load("history-create-failed.json").await?;
        match earlier_from_events("web-bad", &events) {
            Err(e @ CliError::NothingToRedeploy(_)) => {
                assert_eq!(e.exit_code(), crate::error::EXIT_INVALID_DEPLOYMENT);
                Ok(())
            }
            other => Err(format!("unexpected: {other:?}")),
        }
    }
    use super::*;
    use serde_json::json;

    fn file(extra: serde_json::Value) -> String {
        let mut v = json!({
            "target": {
                "cluster": "demo", "service": "arn:aws:ecs:eu-west-1:123456789012:service/demo/web",
                "container": "app", "hostedZoneId": "Z123", "recordName": "web.internal",
                "slots": {
                    "blue": {"setIdentifier": "blue", "registryArn": "arn:aws:servicediscovery:eu-west-1:1:service/srv-b", "dnsName": "service-blue.ns"},
                    "green": {"setIdentifier": "green", "registryArn": "arn:aws:servicediscovery:eu-west-1:1:service/srv-g", "dnsName": "service-green.ns"}
                }
            },
            "strategy": {"steps": [10, 50, 100], "bakeSeconds": 300},
            "alarms": {"names": ["web-5xx"]}
        });
        if let (Some(obj), Some(add)) = (v.as_object_mut(), extra.as_object()) {
            for (k, val) in add {
                obj.insert(k.clone(), val.clone());
            }
        }
        v.to_string()
    }

    fn reason(r: Result<DeploymentRequest>) -> String {
        match r {
            Err(CliError::InvalidDeployment { reason, .. }) => reason,
            other => format!("unexpected: {other:?}"),
        }
    }

    const T_SECS: i64 = 1_795_760_280;

    #[test]
    fn the_image_comes_from_the_command_line_and_flags_override_the_strategy() -> Result<()> {
        let o = Overrides {
            image: Some("123.dkr.ecr.eu-west-1.amazonaws.com/web:v2".into()),
            steps: Some(vec![25, 100]),
            bake: Some(60),
            ..Overrides::default()
        };
        let req = prepare(Path::new("d.json"), &file(json!({})), &o)?;
        assert_eq!(
            req.image.as_deref(),
            Some("123.dkr.ecr.eu-west-1.amazonaws.com/web:v2")
        );
        assert_eq!(req.strategy.steps, Some(vec![25, 100]));
        assert_eq!(req.strategy.bake_seconds, Some(60));
        Ok(())
    }

    #[test]
    fn a_task_definition_flag_replaces_the_files_image() -> Result<()> {
        let o = Overrides {
            task_definition: Some("web:7".into()),
            ..Overrides::default()
        };
        let req = prepare(Path::new("d.json"), &file(json!({"image": "web:v1"})), &o)?;
        assert_eq!(
            (req.image, req.task_definition.as_deref()),
            (None, Some("web:7"))
        );
        Ok(())
    }

    #[test]
    fn invalid_files_are_refused_before_aws() {
        let none = Overrides::default();
        let p = Path::new("d.json");
        assert!(reason(prepare(p, &file(json!({})), &none)).starts_with("no image"));
        assert!(reason(prepare(
            p,
            &file(json!({"image": "a:1", "imagee": "typo"})),
            &none
        ))
        .contains("unknown field `imagee`"));
        assert!(reason(prepare(
            p,
            &file(json!({"image": "a:1", "strategy": {"steps": [50, 10, 100]}})),
            &none
        ))
        .contains("strictly increasing"));
        assert!(reason(prepare(
            p,
            &file(json!({"image": "a:1", "strategy": {"steps": [10, 50]}})),
            &none
        ))
        .contains("end at 100"));
        assert!(reason(prepare(
            p,
            &file(json!({"image": "a:1", "strategy": {"steps": [0, 100]}})),
            &none
        ))
        .contains("1..=100"));
        assert!(reason(prepare(
            p,
            &file(json!({"image": "a:1", "strategy": {"ttlSeconds": 900}})),
            &none
        ))
        .contains("ttlSeconds"));
        assert!(reason(prepare(p, "{not json", &none)).contains("key must be a string"));
        let both = Overrides {
            steps: Some(vec![]),
            image: Some("a:1".into()),
            ..Overrides::default()
        };
        assert!(reason(prepare(p, &file(json!({})), &both)).contains("strategy.steps"));
    }

    #[test]
    fn names_are_service_tag_and_utc_time() -> Result<()> {
        let o = Overrides {
            image: Some("123.dkr.ecr.eu-west-1.amazonaws.com/team/web:v2.1".into()),
            ..Overrides::default()
        };
        let req = prepare(Path::new("d.json"), &file(json!({})), &o)?;
        assert_eq!(
            derive_name(&req, DateTime::from_secs(T_SECS)),
            "web-v2-1-20261127T061800Z"
        );
        // Deterministic within a second, different a second later.
        assert_eq!(
            derive_name(&req, DateTime::from_secs(T_SECS)),
            derive_name(&req, DateTime::from_secs(T_SECS))
        );
        assert_ne!(
            derive_name(&req, DateTime::from_secs(T_SECS)),
            derive_name(&req, DateTime::from_secs(1_795_760_281))
        );
        Ok(())
    }

    #[test]
    fn names_stay_within_limits_for_long_and_odd_inputs() -> Result<()> {
        let o = Overrides {
            image: Some(format!(
                "registry:5000/{}@sha256:{}",
                "x".repeat(90),
                "ab12".repeat(16)
            )),
            ..Overrides::default()
        };
        let long_service = json!({"target": {
            "cluster": "c", "service": format!("my service with spaces and ünïcode {}", "s".repeat(100)),
            "container": "app", "hostedZoneId": "Z", "recordName": "r",
            "slots": {"blue": {"setIdentifier": "b", "registryArn": "x", "dnsName": "d"},
                      "green": {"setIdentifier": "g", "registryArn": "y", "dnsName": "e"}}}});
        // Names are derived from whatever the file says; validation is not
        // this test's concern, so build the request without it.
        let mut req: DeploymentRequest =
            serde_json::from_value(long_service).map_err(|e| CliError::InvalidDeployment {
                path: "d.json".into(),
                reason: e.to_string(),
            })?;
        req.image = o.image.clone();
        let name = derive_name(&req, DateTime::from_secs(T_SECS));
        assert!(name.len() <= MAX_NAME, "{name} is {} long", name.len());
        assert!(
            name.ends_with("-sha256-ab12ab12ab12-20261127T061800Z"),
            "{name}"
        );
        assert!(name.starts_with("my-service-with-spaces-and"), "{name}");
        check_name(&name)?;
        Ok(())
    }

    #[test]
    fn image_tags_and_digests() {
        assert_eq!(image_tag("nginx"), "latest");
        assert_eq!(image_tag("registry:5000/nginx"), "latest");
        assert_eq!(image_tag("registry:5000/nginx:1.27"), "1.27");
        assert_eq!(
            image_tag("web@sha256:0123456789abcdef0123"),
            "sha256-0123456789ab"
        );
    }

    #[test]
    fn task_definitions_name_the_execution_too() -> Result<()> {
        let o = Overrides {
            task_definition: Some("arn:aws:ecs:eu-west-1:1:task-definition/web:42".into()),
            ..Overrides::default()
        };
        let req = prepare(Path::new("d.json"), &file(json!({})), &o)?;
        assert_eq!(
            derive_name(&req, DateTime::from_secs(T_SECS)),
            "web-web-42-20261127T061800Z"
        );
        Ok(())
    }

    #[test]
    fn the_execution_input_leaves_unset_fields_out_and_reads_back_the_same() -> Result<()> {
        let o = Overrides {
            image: Some("web:v2".into()),
            ..Overrides::default()
        };
        let req = prepare(Path::new("d.json"), &file(json!({})), &o)?;
        let input = execution_input(&req)?;
        assert!(!input.to_string().contains("null"), "{input}");
        assert_eq!(
            input.pointer("/strategy"),
            Some(&json!({"steps": [10, 50, 100], "bakeSeconds": 300}))
        );
        let back: DeploymentRequest =
            serde_json::from_value(input).map_err(std::io::Error::other)?;
        assert_eq!(back, req);
        Ok(())
    }

    #[test]
    fn the_readme_example_file_is_valid() -> Result<()> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/deployment.json");
        let text = std::fs::read_to_string(&path)?;
        let o = Overrides {
            image: Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:v2".into()),
            ..Overrides::default()
        };
        let req = prepare(&path, &text, &o)?;
        assert_eq!(
            derive_name(&req, DateTime::from_secs(T_SECS)),
            "web-v2-20261127T061800Z"
        );
        Ok(())
    }

    #[test]
    fn given_names_are_checked() {
        assert!(check_name("web-v2_1").is_ok());
        assert!(check_name("web v2").is_err());
        assert!(check_name("web:v2").is_err());
        assert!(check_name(&"a".repeat(81)).is_err());
        assert!(check_name("").is_err());
    }
}
