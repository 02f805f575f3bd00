//! Writes and checks `contract/contract.json`: what the Python tests need to
//! know about the engine, generated from the engine itself so that they
//! never read Rust source.
//!
//! - `errorTypes`: every error kind, from `ErrorKind::ALL` (error.rs);
//! - `functions`: each function's input and output type and the AWS actions
//!   it may call (`handlers::AWS_ACTIONS`);
//! - `schemas`: the JSON Schema (draft 2020-12) of every model type, derived
//!   by `schemars` from the serde attributes, twice: as the functions read
//!   JSON (`deserialize`: a `#[serde(default)]` or `Option` field is not
//!   required) and as they write it (`serialize`: only a field with
//!   `skip_serializing_if` may be absent). Doc comments are left out, so
//!   rewording one does not make the file stale;
//! - `launchTypes`: what `target.network.launchType` accepts;
//! - `historyBudget`: the execution-history figures create-taskset bounds
//!   the readiness polls with (the state machine tests check them against
//!   the definition);
//! - `stateGroups`: the state names abort and repair decide on
//!   (`plan::states`), by group (the state machine tests check that every
//!   state of the definition is in exactly these names).
//!
//! The test fails while the checked-in file differs from what the engine
//! gives today; `UPDATE_CONTRACT=1 cargo test -p canary-engine --test
//! contract` rewrites it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use canary_engine::error::{CanaryError, ErrorKind};
use canary_engine::handlers::AWS_ACTIONS;
use canary_engine::model::{
    AlarmRollbackReport, CheckReport, CheckRequest, CreateTaskSetRequest, DeleteReport,
    DeleteTaskSetRequest, Deployment, DeploymentRequest, RepairReport, SetWeightRequest,
    WeightReport,
};
use canary_engine::plan;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn contract_path() -> PathBuf {
    repo().join("contract").join("contract.json")
}

/// One function: its name, and the type names of its input and output
/// (`None`: not a model type).
struct FunctionIo {
    function: &'static str,
    input: Option<String>,
    output: String,
}

fn io<I: JsonSchema, O: JsonSchema>(function: &'static str) -> FunctionIo {
    FunctionIo {
        function,
        input: Some(I::schema_name().into_owned()),
        output: O::schema_name().into_owned(),
    }
}

/// Each function's request and answer types, as its handler parses and
/// returns them. alarm-rollback reads a CloudWatch "Alarm State Change"
/// event from EventBridge (not an engine type; `alarm_rollback::parse_event`).
fn functions() -> Vec<FunctionIo> {
    vec![
        io::<CreateTaskSetRequest, Deployment>("create-taskset"),
        io::<CheckRequest, CheckReport>("check-health"),
        io::<SetWeightRequest, WeightReport>("set-weight"),
        io::<DeleteTaskSetRequest, DeleteReport>("delete-taskset"),
        FunctionIo {
            function: "alarm-rollback",
            input: None,
            output: AlarmRollbackReport::schema_name().into_owned(),
        },
        FunctionIo {
            function: "repair",
            input: None,
            output: RepairReport::schema_name().into_owned(),
        },
    ]
}

/// The `$defs` of every type reachable from the functions' inputs and
/// outputs and from the execution input, for one direction.
fn definitions(settings: SchemaSettings) -> Value {
    let mut generator = SchemaGenerator::new(settings);
    generator.subschema_for::<DeploymentRequest>();
    generator.subschema_for::<CreateTaskSetRequest>();
    generator.subschema_for::<Deployment>();
    generator.subschema_for::<CheckRequest>();
    generator.subschema_for::<CheckReport>();
    generator.subschema_for::<SetWeightRequest>();
    generator.subschema_for::<WeightReport>();
    generator.subschema_for::<DeleteTaskSetRequest>();
    generator.subschema_for::<DeleteReport>();
    generator.subschema_for::<AlarmRollbackReport>();
    generator.subschema_for::<RepairReport>();
    let mut defs = Value::Object(generator.take_definitions(true));
    strip_descriptions(&mut defs);
    defs
}

/// Removes the doc-comment `description` of every schema (a property that
/// happened to be called "description" is an object, and stays).
fn strip_descriptions(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("description").is_some_and(Value::is_string) {
                map.remove("description");
            }
            map.values_mut().for_each(strip_descriptions);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_descriptions),
        _ => {}
    }
}

/// `plan::states`, group by group.
fn state_groups() -> Value {
    use plan::states;
    json!({
        "create": [states::CREATE],
        "readiness": states::READINESS,
        "firstShift": [states::FIRST_SHIFT],
        "canary": states::CANARY,
        "shift": [states::SHIFT],
        "promote": [states::PROMOTE],
        "promoted": states::PROMOTED,
        "rollingBack": states::ROLLING_BACK,
        "done": states::DONE,
        "ownPathFailed": states::OWN_PATH_FAILED,
    })
}

fn contract() -> Value {
    let errors: Vec<Value> = ErrorKind::ALL
        .iter()
        .map(|k| json!({"errorType": k.as_str(), "messagePrefix": k.prefix()}))
        .collect();
    let mut by_function = Map::new();
    for f in functions() {
        let actions = AWS_ACTIONS.iter().find(|a| a.function == f.function);
        let calls: Vec<&str> = actions.map(|a| a.calls.to_vec()).unwrap_or_default();
        let error_path: Map<String, Value> = actions
            .map(|a| {
                a.error_path_calls
                    .iter()
                    .map(|(action, why)| ((*action).to_string(), json!(why)))
                    .collect()
            })
            .unwrap_or_default();
        by_function.insert(
            f.function.to_string(),
            json!({
                "input": f.input,
                "output": f.output,
                "awsActions": calls,
                "errorPathAwsActions": error_path,
            }),
        );
    }
    json!({
        "about": "Generated by shared/tests/contract.rs from the engine's types; do not edit. \
                  Regenerate: UPDATE_CONTRACT=1 cargo test -p canary-engine --test contract",
        "errorTypes": errors,
        "executionInput": DeploymentRequest::schema_name(),
        "functions": by_function,
        "launchTypes": canary_engine::aws::ecs::LAUNCH_TYPES,
        "historyBudget": {
            "executionHistoryLimit": plan::EXECUTION_HISTORY_LIMIT,
            "readinessEventsPerPoll": plan::READINESS_EVENTS_PER_POLL,
            "maxReadyPolls": plan::MAX_READY_POLLS,
            "canaryStepEvents": plan::CANARY_STEP_EVENTS,
            "maxSteps": plan::MAX_STEPS,
        },
        "stateGroups": state_groups(),
        "schemas": {
            "deserialize": definitions(SchemaSettings::draft2020_12().for_deserialize()),
            "serialize": definitions(SchemaSettings::draft2020_12().for_serialize()),
        },
    })
}

#[test]
fn the_checked_in_contract_is_current() {
    let text = serde_json::to_string_pretty(&contract()).unwrap() + "\n";
    let path = contract_path();
    if std::env::var_os("UPDATE_CONTRACT").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == text,
        "{} is stale: regenerate it with \
         `UPDATE_CONTRACT=1 cargo test -p canary-engine --test contract` and commit it",
        path.display()
    );
}

#[test]
fn every_function_declares_its_aws_actions_once() {
    let names: Vec<_> = functions().iter().map(|f| f.function).collect();
    let declared: Vec<_> = AWS_ACTIONS.iter().map(|a| a.function).collect();
    assert_eq!(names, declared);
    for a in AWS_ACTIONS {
        let calls: BTreeSet<_> = a.calls.iter().collect();
        assert_eq!(
            calls.len(),
            a.calls.len(),
            "{}: an action listed twice",
            a.function
        );
        for (action, _) in a.error_path_calls {
            assert!(
                !calls.contains(action),
                "{}: {action} listed twice",
                a.function
            );
        }
    }
}

/// The operations the adapters name in `classify("service:Action", ..)`
/// (every SDK call maps its error through it).
fn adapter_operations() -> std::io::Result<BTreeSet<String>> {
    let dir = repo().join("shared").join("src").join("aws");
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(&dir)? {
        let source = std::fs::read_to_string(entry?.path())?;
        for rest in source.split("classify(\"").skip(1) {
            if let Some((operation, _)) = rest.split_once('"') {
                found.insert(operation.to_string());
            }
        }
    }
    Ok(found)
}

/// The declared lists are the calls the adapters can make: an action no
/// adapter makes is a stale grant, and an adapter call no function declares
/// would be missing from every role.
#[test]
fn declared_actions_are_the_adapters_calls() {
    let declared: BTreeSet<String> = AWS_ACTIONS
        .iter()
        .flat_map(|a| {
            a.calls
                .iter()
                .copied()
                .chain(a.error_path_calls.iter().map(|(action, _)| *action))
        })
        .map(str::to_string)
        .collect();
    let made = adapter_operations().unwrap();
    assert!(
        !made.is_empty(),
        "no classify(\"service:Action\") found in shared/src/aws"
    );
    let undeclared: Vec<_> = made.difference(&declared).collect();
    assert!(
        undeclared.is_empty(),
        "adapters call {undeclared:?}, which no function declares: add each to the \
         `AWS_ACTIONS` entry of the function that calls it (shared/src/handlers.rs), \
         grant it to that function's role (infra/template.yaml) and regenerate the contract"
    );
    let unmade: Vec<_> = declared.difference(&made).collect();
    assert!(
        unmade.is_empty(),
        "{unmade:?} declared in AWS_ACTIONS but no adapter calls them"
    );
}

#[test]
fn error_types_in_the_contract_are_the_error_kinds() {
    let c = contract();
    let names: Vec<&str> = c["errorTypes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["errorType"].as_str())
        .collect();
    assert_eq!(names, CanaryError::ALL_TYPES);
}

/// The schema says what serde does: spot checks of the attributes the
/// Python tests rely on (required fields, skipped `None`s, unknown fields
/// refused, enum spellings).
#[test]
fn schemas_follow_the_serde_attributes() {
    let c = contract();
    let de = &c["schemas"]["deserialize"];
    let ser = &c["schemas"]["serialize"];
    let required = |defs: &Value, t: &str| -> BTreeSet<String> {
        defs[t]["required"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    // `network` is `#[serde(default, skip_serializing_if)]`: optional both ways.
    assert!(!required(de, "Target").contains("network"));
    assert!(!required(ser, "Target").contains("network"));
    assert!(required(de, "Target").contains("hostedZoneId"));
    // `requestedAt` is `#[serde(default)]` only: may be absent when read,
    // always written.
    assert!(!required(de, "WeightReport").contains("requestedAt"));
    assert!(required(ser, "WeightReport").contains("requestedAt"));
    assert_eq!(de["Target"]["additionalProperties"], json!(false));
    assert_eq!(de["Slot"]["enum"], json!(["blue", "green"]));
}
