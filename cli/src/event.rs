//! One execution-history event, flattened from the SDK's `HistoryEvent` (which
//! has a separate optional details struct for each of ~60 event types) into
//! the few fields the story needs, and the shape-based reading of what a Task
//! was asked ([`Call`]) and what it answered ([`TaskResult`]).
//!
//! Nothing here knows state names: a renamed state keeps working because
//! calls and results are recognized by the fields of their JSON.

use aws_sdk_sfn::types::HistoryEvent;
use aws_smithy_types::DateTime;
use canary_engine::model::{
    DeleteReport, Deployment, GateReport, ReadinessReport, Slot, WeightReport,
};
use serde_json::Value;

/// A history event with the details every type shares pulled up.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: i64,
    pub at: DateTime,
    /// The event type as Step Functions names it, e.g. `TaskStateEntered`.
    pub kind: String,
    /// The state name (state entered/exited events).
    pub state: Option<String>,
    /// Execution or state input (JSON text).
    pub input: Option<String>,
    /// Execution, state or task output (JSON text).
    pub output: Option<String>,
    /// `invoke`, `invoke.waitForTaskToken`, or a Lambda ARN (task events).
    pub resource: Option<String>,
    /// Task parameters (TaskScheduled) as JSON text.
    pub parameters: Option<String>,
    pub timeout_seconds: Option<i64>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl Event {
    /// Flattens an SDK event. Unknown event types keep their id, time and kind.
    pub fn from_sdk(e: &HistoryEvent) -> Self {
        let mut ev = Event {
            id: e.id(),
            at: *e.timestamp(),
            kind: e.r#type().as_str().to_string(),
            state: None,
            input: None,
            output: None,
            resource: None,
            parameters: None,
            timeout_seconds: None,
            error: None,
            cause: None,
        };
        let own = |s: Option<&str>| s.map(str::to_string);
        let fail = |error: Option<&str>, cause: Option<&str>| (own(error), own(cause));
        if let Some(d) = e.execution_started_event_details() {
            ev.input = own(d.input());
        }
        if let Some(d) = e.execution_succeeded_event_details() {
            ev.output = own(d.output());
        }
        if let Some(d) = e.execution_failed_event_details() {
            (ev.error, ev.cause) = fail(d.error(), d.cause());
        }
        if let Some(d) = e.execution_timed_out_event_details() {
            (ev.error, ev.cause) = fail(d.error(), d.cause());
        }
        if let Some(d) = e.execution_aborted_event_details() {
            (ev.error, ev.cause) = fail(d.error(), d.cause());
        }
        if let Some(d) = e.state_entered_event_details() {
            ev.state = Some(d.name().to_string());
            ev.input = own(d.input());
        }
        if let Some(d) = e.state_exited_event_details() {
            ev.state = Some(d.name().to_string());
            ev.output = own(d.output());
        }
        if let Some(d) = e.task_scheduled_event_details() {
            ev.resource = Some(d.resource().to_string());
            ev.parameters = Some(d.parameters().to_string());
            ev.timeout_seconds = d.timeout_in_seconds();
        }
        if let Some(d) = e.task_started_event_details() {
            ev.resource = Some(d.resource().to_string());
        }
        if let Some(d) = e.task_submitted_event_details() {
            ev.resource = Some(d.resource().to_string());
        }
        if let Some(d) = e.task_succeeded_event_details() {
            ev.resource = Some(d.resource().to_string());
            ev.output = own(d.output());
        }
        if let Some(d) = e.task_failed_event_details() {
            ev.resource = Some(d.resource().to_string());
            (ev.error, ev.cause) = fail(d.error(), d.cause());
        }
        if let Some(d) = e.task_timed_out_event_details() {
            ev.resource = Some(d.resource().to_string());
            (ev.error, ev.cause) = fail(d.error(), d.cause());
        }
        if let Some(d) = e.task_start_failed_event_details() {
            ev.resource = Some(d.resource().to_string());
            (ev.error, ev.cause) = fail(d.error(), d.cause());
        }
        if let Some(d) = e.task_submit_failed_event_details() {
            ev.resource = Some(d.resource().to_string());
            (ev.error, ev.cause) = fail(d.error(), d.cause());
        }
        // The older `"Resource": "<lambda arn>"` integration: the input is the payload.
        if let Some(d) = e.lambda_function_scheduled_event_details() {
            ev.resource = Some(d.resource().to_string());
            ev.parameters = own(d.input());
            ev.timeout_seconds = d.timeout_in_seconds();
        }
        if let Some(d) = e.lambda_function_succeeded_event_details() {
            ev.output = own(d.output());
        }
        if let Some(d) = e.lambda_function_failed_event_details() {
            (ev.error, ev.cause) = fail(d.error(), d.cause());
        }
        if let Some(d) = e.lambda_function_timed_out_event_details() {
            (ev.error, ev.cause) = fail(d.error(), d.cause());
        }
        if let Some(d) = e.lambda_function_start_failed_event_details() {
            (ev.error, ev.cause) = fail(d.error(), d.cause());
        }
        if let Some(d) = e.lambda_function_schedule_failed_event_details() {
            (ev.error, ev.cause) = fail(d.error(), d.cause());
        }
        if let Some(d) = e.activity_failed_event_details() {
            (ev.error, ev.cause) = fail(d.error(), d.cause());
        }
        if let Some(d) = e.map_run_failed_event_details() {
            (ev.error, ev.cause) = fail(d.error(), d.cause());
        }
        if let Some(d) = e.evaluation_failed_event_details() {
            ev.state = Some(d.state().to_string());
            (ev.error, ev.cause) = fail(d.error(), d.cause());
        }
        ev
    }

    /// `Task` for `TaskStateEntered`, `Wait` for `WaitStateExited`, ...
    pub fn state_type(&self) -> Option<&str> {
        self.kind
            .strip_suffix("StateEntered")
            .or_else(|| self.kind.strip_suffix("StateExited"))
    }

    pub fn is_state_entered(&self) -> bool {
        self.kind.ends_with("StateEntered")
    }

    pub fn is_state_exited(&self) -> bool {
        self.kind.ends_with("StateExited")
    }

    /// True for the task that waits for a callback (the bake).
    pub fn waits_for_callback(&self) -> bool {
        self.resource
            .as_deref()
            .is_some_and(|r| r.ends_with(".waitForTaskToken"))
    }
}

/// The end of an execution, as its last event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl Outcome {
    pub fn of(kind: &str) -> Option<Self> {
        match kind {
            "ExecutionSucceeded" => Some(Self::Succeeded),
            "ExecutionFailed" => Some(Self::Failed),
            "ExecutionTimedOut" => Some(Self::TimedOut),
            "ExecutionAborted" => Some(Self::Aborted),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::TimedOut => "TIMED_OUT",
            Self::Aborted => "ABORTED",
        }
    }
}

/// What a Task was asked to do, read from the shape of its payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// create-taskset: `{deploymentId, request}`.
    Create {
        image: Option<String>,
        task_definition: Option<String>,
    },
    /// check-health readiness.
    Readiness {
        slot: Option<Slot>,
        task_set: Option<String>,
    },
    /// check-health alarms with a task token: the bake.
    Bake {
        alarms: Vec<String>,
        label: Option<String>,
    },
    /// check-health alarms without a token: the gate after a bake.
    Gate {
        alarms: Vec<String>,
        label: Option<String>,
    },
    /// set-weight.
    SetWeight {
        slot: Option<Slot>,
        percent: u8,
        mark_primary: Option<String>,
        label: Option<String>,
    },
    /// delete-taskset.
    Delete {
        slot: Option<Slot>,
        task_set: Option<String>,
    },
    /// Anything else: the function name (or ARN), if any.
    Other { function: Option<String> },
}

impl Call {
    /// Reads a TaskScheduled event's parameters (`{"FunctionName", "Payload"}`)
    /// or a LambdaFunctionScheduled event's input (the payload itself).
    pub fn from_parameters(parameters: &str, waits_for_callback: bool) -> Self {
        let Ok(v) = serde_json::from_str::<Value>(parameters) else {
            return Call::Other { function: None };
        };
        let function = v
            .get("FunctionName")
            .and_then(Value::as_str)
            .map(function_name);
        let payload = match v.get("Payload") {
            Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
            Some(p) => p.clone(),
            None => v.clone(),
        };
        Self::from_payload(&payload, waits_for_callback).unwrap_or(Call::Other { function })
    }

    fn from_payload(p: &Value, waits_for_callback: bool) -> Option<Self> {
        let obj = p.as_object()?;
        let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
        let slot = || {
            obj.get("slot")
                .and_then(|s| serde_json::from_value::<Slot>(s.clone()).ok())
        };
        let task_set_id = || {
            obj.get("taskSet")
                .and_then(|t| t.get("id"))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        if obj.contains_key("deploymentId") && obj.contains_key("request") {
            let req = obj.get("request");
            let field = |k: &str| {
                req.and_then(|r| r.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            return Some(Call::Create {
                image: field("image"),
                task_definition: field("taskDefinition"),
            });
        }
        match obj.get("check").and_then(Value::as_str) {
            Some("readiness") => {
                return Some(Call::Readiness {
                    slot: slot(),
                    task_set: task_set_id(),
                })
            }
            Some("alarms") => {
                let alarms = obj
                    .get("alarms")
                    .and_then(|a| a.get("names"))
                    .and_then(Value::as_array)
                    .map(|names| {
                        names
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                let label = text("label");
                return Some(if waits_for_callback || obj.contains_key("taskToken") {
                    Call::Bake { alarms, label }
                } else {
                    Call::Gate { alarms, label }
                });
            }
            _ => {}
        }
        if let Some(percent) = obj.get("percent").and_then(Value::as_u64) {
            return Some(Call::SetWeight {
                slot: slot(),
                percent: u8::try_from(percent).unwrap_or(u8::MAX),
                mark_primary: obj
                    .get("markPrimary")
                    .and_then(|t| t.get("id"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                label: text("label"),
            });
        }
        if obj.contains_key("taskSet") {
            return Some(Call::Delete {
                slot: slot(),
                task_set: task_set_id(),
            });
        }
        None
    }
}

/// `my-fn` from `arn:aws:lambda:eu-west-1:123:function:my-fn[:alias]` or `my-fn`.
pub fn function_name(name_or_arn: &str) -> String {
    match name_or_arn.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest).to_string(),
        None => name_or_arn.to_string(),
    }
}

/// What a Task answered, recognized by shape and parsed with the engine's types.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskResult {
    Deployment(Box<Deployment>),
    Readiness(ReadinessReport),
    Gate(GateReport),
    Weights(WeightReport),
    Deleted(DeleteReport),
    /// Some other JSON (or a shape that no longer parses: shown raw).
    Other(Value),
}

impl TaskResult {
    /// Reads a TaskSucceeded output. `lambda:invoke` wraps the function's
    /// answer as `{"StatusCode": 200, "Payload": ...}` (plus metadata on AWS);
    /// the plain Lambda ARN integration gives the answer directly.
    pub fn from_output(output: &str) -> Self {
        let v: Value =
            serde_json::from_str(output).unwrap_or_else(|_| Value::String(output.to_string()));
        let payload = unwrap_invoke(v);
        Self::from_value(payload)
    }

    pub fn from_value(v: Value) -> Self {
        fn parse<T: serde::de::DeserializeOwned>(v: &Value) -> Option<T> {
            serde_json::from_value(v.clone()).ok()
        }
        let Some(obj) = v.as_object() else {
            return Self::Other(v);
        };
        let parsed = if obj.contains_key("weights") {
            parse(&v).map(Self::Weights)
        } else if obj.contains_key("alarms") && obj.contains_key("passed") {
            parse(&v).map(Self::Gate)
        } else if obj.contains_key("ready") {
            parse(&v).map(Self::Readiness)
        } else if obj.contains_key("newTaskSet") && obj.contains_key("strategy") {
            parse(&v).map(|d| Self::Deployment(Box::new(d)))
        } else if obj.contains_key("deleted") && obj.contains_key("taskSetId") {
            parse(&v).map(Self::Deleted)
        } else {
            None
        };
        parsed.unwrap_or(Self::Other(v))
    }
}

fn unwrap_invoke(v: Value) -> Value {
    let is_invoke = v.get("StatusCode").is_some() && v.get("Payload").is_some();
    if !is_invoke {
        return v;
    }
    match v.get("Payload") {
        Some(Value::String(s)) => {
            serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone()))
        }
        Some(p) => p.clone(),
        None => v,
    }
}

/// The human part of a Lambda error cause: `{"errorType","errorMessage"}`
/// becomes its message, also where a Fail state's `States.Format` embedded
/// it in a sentence; anything else is returned as is.
pub fn readable_cause(cause: &str) -> String {
    let mut out = String::with_capacity(cause.len());
    let mut rest = cause;
    while let Some(start) = rest.find("{\"error") {
        let (before, candidate) = rest.split_at(start);
        out.push_str(before);
        let mut stream = serde_json::Deserializer::from_str(candidate).into_iter::<Value>();
        let message = match stream.next() {
            Some(Ok(v)) => v
                .get("errorMessage")
                .and_then(Value::as_str)
                .map(str::to_string),
            _ => None,
        };
        match message {
            Some(m) => {
                out.push_str(&m);
                rest = candidate.get(stream.byte_offset()..).unwrap_or("");
            }
            None => {
                // Not an error object after all: keep the brace and go on.
                out.push('{');
                rest = candidate.get(1..).unwrap_or("");
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn function_names_come_out_of_arns() {
        assert_eq!(function_name("set-weight"), "set-weight");
        assert_eq!(
            function_name(
                "arn:aws:lambda:eu-west-1:123456789012:function:stack-SetWeight-AbC:live"
            ),
            "stack-SetWeight-AbC"
        );
    }

    #[test]
    fn calls_are_recognized_by_payload_shape() {
        let p = json!({"FunctionName": "arn:aws:lambda:r:1:function:x", "Payload": {"target": {}, "slot": "green", "percent": 50, "label": "step 2 of 3"}});
        assert_eq!(
            Call::from_parameters(&p.to_string(), false),
            Call::SetWeight {
                slot: Some(Slot::Green),
                percent: 50,
                mark_primary: None,
                label: Some("step 2 of 3".into())
            }
        );
        let p = json!({"FunctionName": "f", "Payload": {"check": "alarms", "alarms": {"names": ["api-5xx"]}, "since": "t", "taskToken": "tok"}});
        assert!(
            matches!(Call::from_parameters(&p.to_string(), false), Call::Bake { alarms, .. } if alarms == ["api-5xx"])
        );
        let p = json!({"FunctionName": "f", "Payload": {"check": "alarms", "alarms": {"names": []}, "since": "t"}});
        assert!(matches!(
            Call::from_parameters(&p.to_string(), false),
            Call::Gate { .. }
        ));
        let p = json!({"FunctionName": "f", "Payload": {"target": {}, "slot": "blue", "taskSet": {"id": "ecs-svc/1", "arn": "a"}}});
        assert_eq!(
            Call::from_parameters(&p.to_string(), false),
            Call::Delete {
                slot: Some(Slot::Blue),
                task_set: Some("ecs-svc/1".into())
            }
        );
        let p = json!({"FunctionName": "arn:aws:lambda:r:1:function:other", "Payload": {"x": 1}});
        assert_eq!(
            Call::from_parameters(&p.to_string(), false),
            Call::Other {
                function: Some("other".into())
            }
        );
    }

    #[test]
    fn results_are_recognized_inside_the_invoke_envelope() -> Result<(), String> {
        let out = json!({"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": {"weights": {"blue": 90, "green": 10}, "ttlSeconds": 10, "changed": true, "insync": true, "changedAt": "2026-11-27T06:18:01Z"}});
        let TaskResult::Weights(w) = TaskResult::from_output(&out.to_string()) else {
            return Err("not weights".into());
        };
        assert_eq!((w.weights.blue, w.weights.green), (90, 10));
        // The plain Lambda integration: the answer itself.
        let out = json!({"taskSetId": "ecs-svc/1", "deleted": false});
        assert!(
            matches!(TaskResult::from_output(&out.to_string()), TaskResult::Deleted(d) if !d.deleted)
        );
        // A shape that no longer parses falls back to raw JSON.
        let out = json!({"weights": "odd"});
        assert!(matches!(
            TaskResult::from_output(&out.to_string()),
            TaskResult::Other(_)
        ));
        Ok(())
    }

    #[test]
    fn lambda_causes_are_unwrapped() {
        assert_eq!(
            readable_cause(r#"{"errorType":"AlarmFiring","errorMessage":"alarm firing: api-5xx"}"#),
            "alarm firing: api-5xx"
        );
        assert_eq!(readable_cause("plain words"), "plain words");
        assert_eq!(
            readable_cause(
                r#"An alarm fired at step 2 of 3 (50%) ({"errorType":"AlarmFiring","errorMessage":"alarm firing: api-5xx"}). All traffic went back."#
            ),
            "An alarm fired at step 2 of 3 (50%) (alarm firing: api-5xx). All traffic went back."
        );
        assert_eq!(
            readable_cause(r#"odd {"errorX" tail"#),
            r#"odd {"errorX" tail"#
        );
    }
}
