//! One execution-history event, flattened from the SDK's `HistoryEvent` (which
//! has a separate optional details struct for each of ~60 event types) into
//! the few fields the story needs, for the event types the deployment state
//! machine produces (Lambda invokes with and without a task token, Pass,
//! Wait, Choice, Fail, Succeed); and what a Task was asked ([`Call`]) and
//! what it answered ([`TaskResult`]), read with the engine's own request and
//! answer types (`canary_engine::model`).
//!
//! Nothing here knows state names: a renamed state keeps working because
//! calls and results are recognized by the type their JSON reads as.

use aws_sdk_sfn::types::HistoryEvent;
use aws_smithy_types::DateTime;
use canary_engine::model::{
    CheckReport, CheckRequest, CreateTaskSetRequest, DeleteReport, DeleteTaskSetRequest,
    Deployment, GateReport, ReadinessReport, SetWeightRequest, Slot, WeightReport,
};
use serde::Deserialize;
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

/// What a Task was asked to do, read from its payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// create-taskset: `{deploymentId, request}`.
    Create {
        image: Option<String>,
        task_definition: Option<String>,
    },
    /// check-health readiness of the task set with this id.
    Readiness { task_set: String },
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
        slot: Slot,
        percent: u8,
        mark_primary: Option<String>,
        label: Option<String>,
    },
    /// delete-taskset.
    Delete { slot: Slot, task_set: String },
    /// Anything else: the function name (or ARN), if any.
    Other { function: Option<String> },
}

/// The parameters of a `lambda:invoke` task (with or without
/// `.waitForTaskToken`, the only task integration the state machine uses).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InvokeParameters {
    function_name: Option<String>,
    payload: Value,
}

/// What the state machine sends its functions: the engine's own request
/// types (each refuses unknown fields, so at most one reads a payload).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Request {
    Create(Box<CreateTaskSetRequest>),
    Check(Box<CheckRequest>),
    SetWeight(Box<SetWeightRequest>),
    Delete(Box<DeleteTaskSetRequest>),
}

impl Call {
    /// Reads a TaskScheduled event's parameters (`{"FunctionName", "Payload"}`).
    pub fn from_parameters(parameters: &str, waits_for_callback: bool) -> Self {
        let Ok(p) = serde_json::from_str::<InvokeParameters>(parameters) else {
            return Call::Other { function: None };
        };
        match serde_json::from_value::<Request>(p.payload) {
            Ok(request) => Self::from_request(request, waits_for_callback),
            Err(_) => Call::Other {
                function: p.function_name.as_deref().map(function_name),
            },
        }
    }

    fn from_request(request: Request, waits_for_callback: bool) -> Self {
        match request {
            Request::Create(c) => Call::Create {
                image: c.request.image,
                task_definition: c.request.task_definition,
            },
            Request::Check(c) => match *c {
                CheckRequest::Readiness { task_set, .. } => Call::Readiness {
                    task_set: task_set.id,
                },
                CheckRequest::Alarms {
                    alarms,
                    task_token,
                    label,
                    ..
                } => {
                    let alarms = alarms.names;
                    if waits_for_callback || task_token.is_some() {
                        Call::Bake { alarms, label }
                    } else {
                        Call::Gate { alarms, label }
                    }
                }
            },
            Request::SetWeight(w) => Call::SetWeight {
                slot: w.slot,
                percent: w.percent,
                mark_primary: w.mark_primary.map(|t| t.id),
                label: w.label,
            },
            Request::Delete(d) => Call::Delete {
                slot: d.slot,
                task_set: d.task_set.id,
            },
        }
    }
}

/// `my-fn` from `arn:aws:lambda:eu-west-1:123:function:my-fn[:alias]` or `my-fn`.
pub fn function_name(name_or_arn: &str) -> String {
    match name_or_arn.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest).to_string(),
        None => name_or_arn.to_string(),
    }
}

/// What a Task answered, read with the engine's types.
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

/// What the functions answer: the engine's own output types.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Answer {
    Deployment(Box<Deployment>),
    Weights(WeightReport),
    Check(CheckReport),
    Deleted(DeleteReport),
}

/// `lambda:invoke`'s envelope around the function's answer (plus metadata
/// on AWS).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InvokeOutput {
    #[allow(dead_code)] // Present in every envelope: tells it from an answer.
    status_code: i64,
    payload: Value,
}

impl TaskResult {
    /// Reads a TaskSucceeded output: `lambda:invoke` wraps the function's
    /// answer as `{"StatusCode": 200, "Payload": ...}`.
    pub fn from_output(output: &str) -> Self {
        let v: Value =
            serde_json::from_str(output).unwrap_or_else(|_| Value::String(output.to_string()));
        let payload = match serde_json::from_value::<InvokeOutput>(v.clone()) {
            Ok(InvokeOutput {
                payload: Value::String(s),
                ..
            }) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
            Ok(envelope) => envelope.payload,
            Err(_) => return Self::Other(v),
        };
        Self::from_value(payload)
    }

    pub fn from_value(v: Value) -> Self {
        match Answer::deserialize(&v) {
            Ok(Answer::Deployment(d)) => Self::Deployment(d),
            Ok(Answer::Weights(w)) => Self::Weights(w),
            Ok(Answer::Check(CheckReport::Readiness(r))) => Self::Readiness(r),
            Ok(Answer::Check(CheckReport::Gate(g))) => Self::Gate(g),
            Ok(Answer::Deleted(d)) => Self::Deleted(d),
            Err(_) => Self::Other(v),
        }
    }
}

/// The approval wait's token output ([`crate::approve::token_output`]): who
/// approved, and when.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub approved_by: String,
    #[serde(default)]
    pub approved_at: String,
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

    /// Every call of a recorded deployment reads as the engine's request
    /// it is; a payload no request type reads is `Other`.
    #[tokio::test]
    async fn calls_are_read_as_the_engines_requests() -> Result<(), String> {
        let events = crate::fixtures::load("history-success.json").await?;
        let calls: Vec<Call> = events
            .iter()
            .filter(|e| e.kind == "TaskScheduled")
            .map(|e| {
                Call::from_parameters(
                    e.parameters.as_deref().unwrap_or("{}"),
                    e.waits_for_callback(),
                )
            })
            .collect();
        let label = |l: &str| Some(l.to_string());
        let step = |percent: u8, l: &str| Call::SetWeight {
            slot: Slot::Green,
            percent,
            mark_primary: None,
            label: label(l),
        };
        let bake = |l: &str| Call::Bake {
            alarms: vec!["web-5xx".into()],
            label: label(l),
        };
        let gate = |l: &str| Call::Gate {
            alarms: vec!["web-5xx".into()],
            label: label(l),
        };
        let ready = Call::Readiness {
            task_set: "ecs-svc/222".into(),
        };
        let expected = vec![
            Call::Create {
                image: Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2".into()),
                task_definition: None,
            },
            ready.clone(),
            ready,
            step(10, "step 1 of 3 (10%)"),
            bake("step 1 of 3 (10%)"),
            gate("step 1 of 3 (10%)"),
            step(50, "step 2 of 3 (50%)"),
            bake("step 2 of 3 (50%)"),
            gate("step 2 of 3 (50%)"),
            step(100, "step 3 of 3 (100%)"),
            bake("step 3 of 3 (100%)"),
            gate("step 3 of 3 (100%)"),
            Call::SetWeight {
                slot: Slot::Green,
                percent: 100,
                mark_primary: Some("ecs-svc/222".into()),
                label: label("promote"),
            },
            Call::Delete {
                slot: Slot::Blue,
                task_set: "ecs-svc/111".into(),
            },
        ];
        assert_eq!(calls, expected);

        // Not a request of the engine (an unknown field, a missing one):
        // the function's name is all there is to say.
        for payload in [
            json!({"x": 1}),
            json!({"slot": "green", "percent": 50, "label": "step 2 of 3"}),
        ] {
            let p =
                json!({"FunctionName": "arn:aws:lambda:r:1:function:other", "Payload": payload});
            assert_eq!(
                Call::from_parameters(&p.to_string(), false),
                Call::Other {
                    function: Some("other".into())
                }
            );
        }
        Ok(())
    }

    #[test]
    fn results_are_recognized_inside_the_invoke_envelope() -> Result<(), String> {
        let out = json!({"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": {"weights": {"blue": 90, "green": 10}, "ttlSeconds": 10, "changed": true, "insync": true, "changedAt": "2026-11-27T06:18:01Z"}});
        let TaskResult::Weights(w) = TaskResult::from_output(&out.to_string()) else {
            return Err("not weights".into());
        };
        assert_eq!((w.weights.blue, w.weights.green), (90, 10));
        let out =
            json!({"StatusCode": 200, "Payload": {"taskSetId": "ecs-svc/1", "deleted": false}});
        assert!(
            matches!(TaskResult::from_output(&out.to_string()), TaskResult::Deleted(d) if !d.deleted)
        );
        // Only `lambda:invoke` answers (the plain Lambda ARN integration,
        // which gives the answer bare, is not used by the state machine).
        let out = json!({"taskSetId": "ecs-svc/1", "deleted": false});
        assert!(matches!(
            TaskResult::from_output(&out.to_string()),
            TaskResult::Other(_)
        ));
        // A shape that no longer parses falls back to raw JSON.
        let out = json!({"StatusCode": 200, "Payload": {"weights": "odd"}});
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
