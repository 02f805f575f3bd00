"""Runs the real state machine definition in moto's ASL interpreter, in process.

moto 5.2.5 (the same interpreter the local end-to-end run uses) executes
`statemachine/deployment.asl.json` with the local substitutions. Four seams of
the interpreter are replaced so a run takes milliseconds and nothing leaves the
process:

- the Lambda invoke of a Task calls a Python fake (`FakeFunctions`) instead of
  an HTTP endpoint; a fake's `FunctionError` raises the same way a real
  function error does (errorType -> the state's Error name), and a
  `LambdaServiceError` raises the botocore `ClientError` moto turns into
  `Lambda.<Code>`;
- Wait states return at once (the seconds asked for are recorded);
- Retry back-off sleeps return at once (the delays are recorded);
- the deployment events' `events:putEvents` Tasks run moto's own EventBridge
  integration; the local AWS's capture (`localaws.patches.eventbridge_capture`)
  keeps what they put (`Outcome.events`) and can fail the next entries;
- a `.waitForTaskToken` task whose token nobody completes times out at once
  (the timeout it would have waited is recorded), which is what "bake passed"
  looks like; a fake that fails the token with `SendTaskFailure` (as the
  alarm-rollback function does) wins over the timeout.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import boto3
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
from moto.stepfunctions.parser.backend import execution_worker
from moto.stepfunctions.parser.backend.execution import Execution as ParserExecution
from moto.stepfunctions.parser.models import stepfunctions_parser_backends
from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
    lambda_eval_utils,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_callback,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import (
    wait_function,
)

REPO = Path(__file__).resolve().parents[2]
ASL_PATH = REPO / "statemachine" / "deployment.asl.json"
LOCAL_SUBSTITUTIONS_PATH = REPO / "statemachine" / "local-substitutions.json"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
ROLE_ARN = "arn:aws:iam::123456789012:role/ecs-dns-canary-statemachine"

CREATE = "create-taskset"
SET_WEIGHT = "set-weight"
CHECK = "check-health"
DELETE = "delete-taskset"


def substituted_definition(substitutions_path: Path = LOCAL_SUBSTITUTIONS_PATH) -> str:
    text = ASL_PATH.read_text()
    for key, value in json.loads(substitutions_path.read_text()).items():
        text = text.replace("${" + key + "}", value)
    return text


class FunctionError(Exception):
    """What a function returns as `Diagnostic { error_type, error_message }`."""

    def __init__(self, error_type: str, message: str = ""):
        super().__init__(error_type)
        self.error_type = error_type
        self.message = message or f"{error_type} (canned)"


class LambdaServiceError(Exception):
    """A Lambda service failure (the invoke itself failed): `Lambda.<code>`."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass
class Call:
    function: str
    payload: dict
    state: str


@dataclass
class Record:
    """Everything observed while one execution ran."""

    calls: list[Call] = field(default_factory=list)
    waits: list[tuple[str, int]] = field(default_factory=list)
    retry_sleeps: list[float] = field(default_factory=list)
    token_timeouts: list[int] = field(default_factory=list)


_current: dict[str, Any] = {"functions": None, "record": None}
_lock = threading.Lock()


def _state_name(env) -> str:
    try:
        return env.states.context_object.context_object_data["State"]["Name"]
    except (KeyError, AttributeError):
        return "?"


def _fake_invoke(parameters: dict, region: str, state_credentials) -> dict:
    functions: FakeFunctions = _current["functions"]
    record: Record = _current["record"]
    name = parameters["FunctionName"]
    payload = json.loads(parameters["Payload"])
    state = getattr(_tls, "state", "?")
    record.calls.append(Call(name, payload, state))
    try:
        answer = functions.invoke(name, payload)
    except FunctionError as err:
        return {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "ExecutedVersion": "$LATEST",
            "Payload": {"errorType": err.error_type, "errorMessage": err.message},
        }
    except LambdaServiceError as err:
        raise ClientError(
            {
                "Error": {"Code": err.code, "Message": f"{err.code} (canned)"},
                "ResponseMetadata": {"HTTPStatusCode": 500, "RequestId": "canned"},
            },
            "Invoke",
        ) from None
    return {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": answer}


_tls = threading.local()


_PATCHED = False


def _patch_interpreter():
    """Install the seams once per process (idempotent)."""
    global _PATCHED
    if _PATCHED:
        return
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service,
    )

    lambda_eval_utils._invoke_lambda_function = _fake_invoke
    from localaws.patches import eventbridge_capture

    eventbridge_capture.apply()

    # Remember which state invokes (the interpreter runs a Task's body in its
    # own thread, so the name is captured where the invoke happens).
    original_eval_execution = state_task_service.StateTaskService._eval_execution

    def eval_execution(self, env):
        _tls.state = _state_name(env)
        return original_eval_execution(self, env)

    state_task_service.StateTaskService._eval_execution = eval_execution  # type: ignore[method-assign]  # patches moto's method

    def no_wait(self, env, wait_seconds):
        _current["record"].waits.append((_state_name(env), wait_seconds))

    wait_function.WaitFunction._wait_interval = no_wait  # type: ignore[method-assign]  # patches moto's method

    # A TimestampPath Wait is recorded by its instant (the string), not by
    # the seconds from the test's clock to it.
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import timestamp

    def until(self, env):
        self.string.eval(env=env)
        return env.stack.pop()

    timestamp.Timestamp._get_wait_seconds = until  # type: ignore[method-assign]  # patches moto's method

    class _NoSleep:
        @staticmethod
        def sleep(seconds):
            _current["record"].retry_sleeps.append(seconds)

    retrier_decl.time = _NoSleep  # type: ignore[assignment]  # replaces the time module moto's retrier sleeps with

    def token_wait(self, timeout_seconds, callback_endpoint):
        _current["record"].token_timeouts.append(timeout_seconds)
        return callback_endpoint.wait(timeout=0)

    state_task_service_callback.StateTaskServiceCallback._wait_for_task_token_timeout = token_wait  # type: ignore[method-assign]  # patches moto's method

    # ANTLR parsing takes ~0.3 s and moto repeats it for every execution: keep
    # the parse tree of each definition, but still build fresh evaluation
    # components per execution (the preprocessor is what moto runs too).
    trees: dict[str, Any] = {}

    def entrypoint(self):
        definition = self._evaluation_details.state_machine_details.definition
        if definition not in trees:
            trees[definition] = AmazonStateLanguageParser.parse(definition)[1]
        return Preprocessor().visit(trees[definition])

    execution_worker.ExecutionWorker._get_evaluation_entrypoint = entrypoint  # type: ignore[method-assign]  # patches moto's method
    _PATCHED = True


@dataclass
class Outcome:
    name: str
    status: str
    error: str | None
    cause: str | None
    output: Any
    record: Record
    _history: Callable[[], list[dict]]
    # The deployment events this execution put (the local AWS's capture).
    events: list[dict] = field(default_factory=list)

    def detail_types(self) -> list[str]:
        return [e["detail-type"] for e in self.events]

    @property
    def history(self) -> list[dict]:
        if not hasattr(self, "_events"):
            self._events = self._history()
        return self._events

    @property
    def calls(self) -> list[Call]:
        return self.record.calls

    def calls_to(self, function: str) -> list[Call]:
        return [c for c in self.record.calls if c.function == function]

    def call_summary(self) -> list[tuple]:
        """(function, the payload fields that say what the call does)."""
        out: list[tuple] = []
        for c in self.record.calls:
            p = c.payload
            if c.function == SET_WEIGHT:
                out.append((SET_WEIGHT, p["slot"], p["percent"]))
            elif c.function == CHECK:
                kind = p["check"]
                if kind == "alarms" and p.get("taskToken"):
                    kind = "approval" if (p.get("label") or "").startswith(APPROVAL_LABEL) else "bake"
                elif kind == "alarms":
                    kind = "gate"
                out.append((CHECK, kind))
            elif c.function == DELETE:
                out.append((DELETE, p["slot"], p["taskSet"]["id"]))
            else:
                out.append((c.function,))
        return out

    def states_entered(self) -> list[str]:
        return [
            e["stateEnteredEventDetails"]["name"]
            for e in self.history
            if "stateEnteredEventDetails" in e
        ]


class Interpreter:
    """One moto backend with the definition loaded; runs executions one by one."""

    def __init__(self, definition: str | None = None):
        _patch_interpreter()
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._mock.start()
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        self.arn = self.sfn.create_state_machine(
            name="ecs-dns-canary",
            definition=definition or substituted_definition(),
            roleArn=ROLE_ARN,
            type="STANDARD",
        )["stateMachineArn"]
        self._names = itertools.count(1)

    def close(self):
        self._mock.stop()

    def run(
        self, request: dict, functions: "FakeFunctions", timeout: float = 20.0, fail_put_events: int = 0
    ) -> Outcome:
        """fail_put_events: the first n PutEvents entries of this run fail."""
        from localaws.patches import eventbridge_capture

        with _lock:
            events_since = eventbridge_capture.last_seq()
            eventbridge_capture.fail_next(fail_put_events)
            record = Record()
            _current["functions"] = functions
            _current["record"] = record
            functions.sfn = self.sfn
            name = f"deploy-{next(self._names)}"
            arn = self.sfn.start_execution(
                stateMachineArn=self.arn, name=name, input=json.dumps(request)
            )["executionArn"]
            # Watch the execution object itself: polling through the API
            # competes with the interpreter thread for the GIL.
            # The parser backend keeps its own Execution (moto annotates the base model's).
            execution = cast(ParserExecution, stepfunctions_parser_backends[ACCOUNT][REGION].describe_execution(arn))
            deadline = time.monotonic() + timeout
            while execution.exec_status is None or execution.exec_status.value == "RUNNING":
                if time.monotonic() > deadline:
                    raise TimeoutError(f"execution {name} still RUNNING after {timeout}s")
                time.sleep(0.002)
            desc = self.sfn.describe_execution(executionArn=arn)
            sfn = self.sfn
            eventbridge_capture.fail_next(0)
            events = [e for e in eventbridge_capture.events(since=events_since) if arn in e["resources"]]

            def history():
                return sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]

            return Outcome(
                name=name,
                status=desc["status"],
                error=desc.get("error"),
                cause=desc.get("cause"),
                output=json.loads(desc["output"]) if desc.get("output") else None,
                record=record,
                _history=history,
                events=events,
            )


# --------------------------------------------------------------------------- fakes

TARGET = {
    "cluster": "demo",
    "service": "api",
    "container": "app",
    "hostedZoneId": "Z0PRIVATE",
    "recordName": "api.internal",
    "slots": {
        "blue": {
            "setIdentifier": "api-blue",
            "registryArn": "arn:aws:servicediscovery:us-east-1:123456789012:service/srv-blue",
            "dnsName": "api-blue.ns.internal",
        },
        "green": {
            "setIdentifier": "api-green",
            "registryArn": "arn:aws:servicediscovery:us-east-1:123456789012:service/srv-green",
            "dnsName": "api-green.ns.internal",
        },
    },
}

OLD_TASK_SET = {"id": "ecs-svc/old", "arn": "arn:aws:ecs:us-east-1:123456789012:task-set/demo/api/ecs-svc/old"}
NEW_TASK_SET = {"id": "ecs-svc/new", "arn": "arn:aws:ecs:us-east-1:123456789012:task-set/demo/api/ecs-svc/new"}
ALARM = "api-5xx"


def request(steps=(10, 50, 100), bake_seconds=300, **strategy) -> dict:
    """A DeploymentRequest as an engineer writes it."""
    s = {"steps": list(steps), "bakeSeconds": bake_seconds}
    s.update(strategy)
    return {
        "target": TARGET,
        "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/api:v2",
        "strategy": s,
        "alarms": {"names": [ALARM]},
    }


def deployment_for(req: dict, deployment_id: str, first: bool = False) -> dict:
    """What create-taskset answers: the plan with defaults filled in."""
    s = req.get("strategy", {})
    return {
        "id": deployment_id,
        "target": req["target"],
        "strategy": {
            "steps": s.get("steps", [10, 50, 100]),
            "bakeSeconds": s.get("bakeSeconds", 300),
            "readyTimeoutSeconds": s.get("readyTimeoutSeconds", 600),
            "readyPollSeconds": s.get("readyPollSeconds", 15),
            "drainSeconds": s.get("drainSeconds", 70),
            "ttlSeconds": s.get("ttlSeconds", 60),
            "deploymentTtlSeconds": s.get("deploymentTtlSeconds", 5),
            "originalTtlSeconds": 60,
            "cloudmapTtlSeconds": 10,
            "unsafeShortDrain": False,
            "maxRollbackSeconds": 90,
            **({"approval": {
                "beforeSteps": s["approval"]["beforeSteps"],
                "timeoutSeconds": s["approval"].get("timeoutSeconds", 3600),
                "onTimeout": s["approval"].get("onTimeout", "rollback"),
            }} if "approval" in s else {}),
        },
        "alarms": {"names": req.get("alarms", {}).get("names", []), "insufficientData": "pass"},
        "liveSlot": "blue",
        "newSlot": "green",
        "oldTaskSet": None if first else OLD_TASK_SET,
        "newTaskSet": NEW_TASK_SET,
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/api:7",
        "firstDeployment": first,
        "createdAt": "2026-11-27T10:00:00Z",
        "rollbackBound": rollback_bound(60),
    }


def rollback_bound(propagation: int, source: str = "documented") -> dict:
    """A RollbackBound as create-taskset (documented 60 s) or set-weight
    (a longer measured INSYNC) answers it: CNAME TTL 5 s, drain 25 s."""
    return {
        "seconds": propagation + 5,
        "propagationSeconds": propagation,
        "propagationSource": source,
        "ttlSeconds": 5,
        "detection": [],
        "keepAlive": {"seconds": propagation + 25, "drainSeconds": propagation + 25,
                      "drainAfterInsyncSeconds": 25, "term": "drain"},
        "statement": f"a rollback reaches new connections within {propagation + 5} s of its decision",
    }


@dataclass
class Rule:
    """Make the n-th matching call (or every matching call) fail."""

    function: str
    error: Exception
    when: Callable[[dict], bool] = lambda p: True
    times: int | None = None  # None: every time (a permanent failure)
    after: int = 0  # let this many matching calls through first
    seen: int = 0

    def fires(self, function: str, payload: dict) -> bool:
        if function != self.function or not self.when(payload):
            return False
        self.seen += 1
        if self.seen <= self.after:
            return False
        return self.times is None or self.seen - self.after <= self.times


class FakeFunctions:
    """Canned answers shaped like the Rust functions' (model.rs), plus failure rules.

    - readiness answers `ready: false` `not_ready_polls` times, then `true`;
    - a bake (alarms check with a task token) ends by timeout, unless
      `alarm_during_bake` names its step: then the token is failed with
      AlarmFiring the way the alarm-rollback function does;
    - the gate passes unless `alarm_at_gate` names its step.
    """

    def __init__(
        self,
        first_deployment: bool = False,
        not_ready_polls: int = 0,
        alarm_during_bake: int | None = None,
        alarm_at_gate: int | None = None,
        abort_during_bake: int | None = None,
        promote_during_bake: tuple[int, bool] | None = None,
        approvals: dict[int, str] | None = None,
    ):
        self.first_deployment = first_deployment
        self.not_ready_polls = not_ready_polls
        self.alarm_during_bake = alarm_during_bake
        self.alarm_at_gate = alarm_at_gate
        self.abort_during_bake = abort_during_bake
        self.promote_during_bake = promote_during_bake
        # Approval wait before step k -> what the engineer (or an alarm) does:
        # "approve", "reject", "abort" or "alarm"; absent: nobody answers (timeout).
        self.approvals = approvals or {}
        self.rules: list[Rule] = []
        self.weights = {"blue": 100, "green": 0}
        # set-weight call number (1-based) -> measured INSYNC seconds (default 1).
        self.insync_seconds: dict[int, int] = {}
        self.sfn: Any = None  # the Interpreter's client, set per run
        self._polls = 0
        self._changes = 0

    def fail(self, function: str, error: Exception, when=lambda p: True, times=None, after=0) -> "FakeFunctions":
        self.rules.append(Rule(function, error, when, times, after))
        return self

    def invoke(self, function: str, payload: dict) -> Any:
        for rule in self.rules:
            if rule.fires(function, payload):
                raise rule.error
        return getattr(self, function.replace("-", "_"))(payload)

    def create_taskset(self, p: dict) -> dict:
        return deployment_for(p["request"], p["deploymentId"], first=self.first_deployment)

    def set_weight(self, p: dict) -> dict:
        slot, percent = p["slot"], p["percent"]
        other = "blue" if slot == "green" else "green"
        weights = {slot: percent, other: 100 - percent}
        changed = weights != self.weights
        self.weights = weights
        self._changes += 1
        # The set-weight answer carries the request's rollback bound, with
        # this change's INSYNC time when longer (`insync_seconds` by call).
        insync_seconds = self.insync_seconds.get(self._changes, 1)
        bound = p.get("rollbackBound")
        if bound is not None and insync_seconds > bound["propagationSeconds"]:
            bound = rollback_bound(insync_seconds, "measured")
        report = {
            "weights": weights,
            "ttlSeconds": p.get("ttlSeconds") or 60,
            "changed": changed,
            "insync": True,
            "requestedAt": f"2026-11-27T09:{self._changes:02d}:59Z",
            "changedAt": f"2026-11-27T10:{self._changes:02d}:00Z",
            "insyncSeconds": insync_seconds,
            "rollbackBound": bound,
        }
        if p.get("drain"):
            # The exact drain's instant: the drain Wait's TimestampPath.
            report["drain"] = {
                "until": f"2026-11-27T10:{self._changes:02d}:30Z",
                "seconds": 30,
                "explain": f"delete 30s after the change was INSYNC ({p['drain']['slot']})",
            }
        if p.get("markPrimary"):
            report["primaryTaskSet"] = p["markPrimary"]["id"]
        if p.get("label"):
            report["label"] = p["label"]
        return report

    def check_health(self, p: dict) -> dict:
        if p["check"] == "readiness":
            self._polls += 1
            ready = self._polls > self.not_ready_polls
            return {
                "ready": ready,
                "taskSetId": p["taskSet"]["id"],
                "stabilityStatus": "STEADY_STATE" if ready else "STABILIZING",
                "desiredCount": 2,
                "runningCount": 2 if ready else 1,
                "pendingCount": 0 if ready else 1,
                "healthyInstances": 2 if ready else 0,
                "unhealthyInstances": 0,
                "waitedSeconds": 15 * (self._polls - 1),
                "reason": "2 of 2 tasks running and healthy" if ready else "1 of 2 tasks running",
            }
        label = p.get("label") or ""
        if p.get("taskToken") and label.startswith(APPROVAL_LABEL):
            self._answer_approval(p, _step_number(label[len(APPROVAL_LABEL):]))
            return self._gate_answer(p, None)
        step = _step_number(label)
        if p.get("taskToken"):
            if self.promote_during_bake and self.promote_during_bake[0] == step:
                # What `ecs-dns-canary promote [--full]` does: end the bake with success.
                self.sfn.send_task_success(
                    taskToken=p["taskToken"],
                    output=json.dumps(
                        {"promotedBy": ABORTER, "promoteFull": self.promote_during_bake[1], "promotedAt": "2026-12-02T02:50:00Z"}
                    ),
                )
            elif self.abort_during_bake == step:
                # What `ecs-dns-canary abort` does: fail the token with Aborted.
                self.sfn.send_task_failure(
                    taskToken=p["taskToken"],
                    error="Aborted",
                    cause=f"aborted by {ABORTER}: bad metrics on the dashboard",
                )
            elif self.alarm_during_bake == step:
                # What alarm-rollback does on the alarm event: weights back, then fail the token.
                self.weights = {"blue": 100, "green": 0}
                self.sfn.send_task_failure(
                    taskToken=p["taskToken"],
                    error="AlarmFiring",
                    cause=f"alarm {ALARM} went to ALARM during {p['label']}; traffic moved back to {p['rollback']['slot']}",
                )
        elif self.alarm_at_gate == step:
            raise FunctionError("AlarmFiring", f"alarm firing: {ALARM} was in ALARM since {p['since']}")
        return self._gate_answer(p, step)

    def _answer_approval(self, p: dict, step: int | None) -> None:
        """What `approve`, `reject`, `abort` or alarm-rollback does to the
        approval wait's token (found like a bake's)."""
        token = p["taskToken"]
        answer = self.approvals.get(step) if step is not None else None
        if answer == "approve":
            self.sfn.send_task_success(
                taskToken=token, output=json.dumps({"approvedBy": ABORTER, "approvedAt": "2026-12-02T06:00:00Z"})
            )
        elif answer == "reject":
            self.sfn.send_task_failure(
                taskToken=token, error="Rejected", cause=f"rejected by {ABORTER} during Wait for approval: p99 up"
            )
        elif answer == "abort":
            self.sfn.send_task_failure(taskToken=token, error="Aborted", cause=f"aborted by {ABORTER}: stop")
        elif answer == "alarm":
            self.weights = {"blue": 100, "green": 0}
            self.sfn.send_task_failure(
                taskToken=token,
                error="AlarmFiring",
                cause=f"alarm {ALARM} went to ALARM during {p['label']}; traffic moved back to {p['rollback']['slot']}",
            )

    def _gate_answer(self, p: dict, step: int | None) -> dict:
        return {
            "passed": True,
            "since": p["since"],
            "observedAt": f"2026-11-27T10:59:{step or 0:02d}Z",
            "checkedAt": "2026-11-27T11:00:00Z",
            "alarms": [{"name": ALARM, "state": "OK", "firedInWindow": False, "reason": "quiet"}],
            "insufficientData": [],
            "label": p.get("label"),
        }

    def delete_taskset(self, p: dict) -> dict:
        return {"taskSetId": p["taskSet"]["id"], "deleted": True}


ABORTER = "arn:aws:iam::123456789012:user/alice"
APPROVAL_LABEL = "approval before "


def _step_number(label: str | None) -> int | None:
    # "step 2 of 3 (50%)" -> 2
    if label and label.startswith("step "):
        return int(label.split()[1])
    return None
