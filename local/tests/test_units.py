"""Pure pieces: name stripping, request identification, fault counting."""

from __future__ import annotations

import io

import pytest

from localaws.errors import qualified_error_type
from localaws.faults import FaultBook
from localaws.identify import RequestInfo, identify
from localaws.lambda_client import function_name


@pytest.mark.parametrize(
    "given, name",
    [
        ("set-weight", "set-weight"),
        ("arn:aws:lambda:us-east-1:123456789012:function:set-weight", "set-weight"),
        ("arn:aws:lambda:us-east-1:123456789012:function:set-weight:live", "set-weight"),
        ("123456789012:function:check-health", "check-health"),
        ("check-health:$LATEST", "check-health"),
    ],
)
def test_function_name_strips_arns_and_qualifiers(given: str, name: str) -> None:
    assert function_name(given) == name


def _environ(method: str, path: str, headers: dict[str, str], body: bytes = b"", query: str = "") -> dict:
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    for k, v in headers.items():
        if k.lower() == "content-type":
            env["CONTENT_TYPE"] = v
        else:
            env["HTTP_" + k.upper().replace("-", "_")] = v
    return env


def auth(service: str) -> str:
    return f"AWS4-HMAC-SHA256 Credential=AKID/20261127/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=x"


def test_identifies_route53_rest_operations() -> None:
    cases = [
        ("POST", "/2013-04-01/hostedzone/Z123/rrset/", "ChangeResourceRecordSets"),
        ("POST", "/2013-04-01/hostedzone/Z123/rrset", "ChangeResourceRecordSets"),
        ("GET", "/2013-04-01/hostedzone/Z123/rrset", "ListResourceRecordSets"),
        ("GET", "/2013-04-01/change/C42", "GetChange"),
        ("GET", "/2013-04-01/hostedzone/Z123", "GetHostedZone"),
        ("POST", "/2013-04-01/hostedzone", "CreateHostedZone"),
    ]
    for method, path, op in cases:
        info = identify(_environ(method, path, {"Authorization": auth("route53")}), b"")
        assert (info.service, info.operation, info.protocol) == ("route53", op, "rest-xml"), path


def test_identifies_json_cbor_and_query_requests() -> None:
    info = identify(
        _environ("POST", "/", {"Authorization": auth("ecs"), "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.CreateTaskSet"}),
        b"{}",
    )
    assert (info.service, info.operation, info.protocol) == ("ecs", "CreateTaskSet", "json")
    info = identify(
        _environ(
            "POST",
            "/service/GraniteServiceVersion20100801/operation/DescribeAlarmHistory",
            {"Authorization": auth("monitoring"), "Smithy-Protocol": "rpc-v2-cbor"},
        ),
        b"\xa0",
    )
    assert (info.service, info.operation, info.protocol) == ("cloudwatch", "DescribeAlarmHistory", "rpc-v2-cbor")
    body = b"Action=DescribeAlarms&Version=2010-08-01"
    info = identify(
        _environ("POST", "/", {"Authorization": auth("monitoring"), "Content-Type": "application/x-www-form-urlencoded"}, body),
        body,
    )
    assert (info.service, info.operation, info.protocol) == ("cloudwatch", "DescribeAlarms", "query")


def test_caller_comes_from_the_user_agent() -> None:
    ua = "aws-sdk-rust/1.3 ua/2.1 api/ecs/1.157 os/linux lang/rust/1.90 app/localaws-fn"
    info = identify(_environ("POST", "/", {"Authorization": auth("ecs"), "X-Amz-Target": "X.Y", "X-Amz-User-Agent": ua}), b"")
    assert info.caller == "function"
    info = identify(_environ("POST", "/", {"Authorization": auth("ecs"), "X-Amz-Target": "X.Y", "User-Agent": "aws-sdk-rust/1.3 os/linux"}), b"")
    assert info.caller == "rust"
    info = identify(_environ("POST", "/", {"Authorization": auth("ecs"), "X-Amz-Target": "X.Y", "User-Agent": "Boto3/1.44 localaws-harness"}), b"")
    assert info.caller == "harness"


def test_fault_rules_count_from_their_creation() -> None:
    book = FaultBook()
    info = RequestInfo("route53", "ChangeResourceRecordSets", "rest-xml", "function", "us-east-1", "")
    book.add({"service": "route53", "operation": "ChangeResourceRecordSets", "kind": "throttle", "first": 2, "last": 3})
    assert [book.check(info) is not None for _ in range(5)] == [False, True, True, False, False]
    other = RequestInfo("route53", "GetChange", "rest-xml", "function", "us-east-1", "")
    book.add({"service": "r53", "operation": "GetChange", "kind": "5xx", "nth": 1})
    assert book.check(other) is not None and book.check(other) is None


def test_fault_rules_match_callers() -> None:
    book = FaultBook()
    book.add({"service": "ecs", "operation": "*", "kind": "permanent", "times": 10})
    harness = RequestInfo("ecs", "DescribeServices", "json", "harness", "us-east-1", "")
    fn = RequestInfo("ecs", "DescribeServices", "json", "function", "us-east-1", "")
    assert book.check(harness) is None
    assert book.check(fn) is not None
    with pytest.raises(ValueError):
        book.add({"service": "ecs", "kind": "melt"})


def test_cbor_error_types_are_absolute_shape_ids() -> None:
    assert qualified_error_type("cloudwatch", "ResourceNotFound") == "com.amazonaws.cloudwatch#ResourceNotFound"
    assert qualified_error_type("cloudwatch", "InvalidParameterValue") == "com.amazonaws.cloudwatch#InvalidParameterValueException"
    assert qualified_error_type("cloudwatch", "Throttling") == "com.amazonaws.cloudwatch#Throttling"


def test_a_failed_execution_has_its_error_before_its_status() -> None:
    """A reader that sees FAILED sees the error too (patches/sfn_execution.py):
    the status is recorded at the moment it is set, with the error in place
    then. Stock moto sets the status first."""
    from types import SimpleNamespace

    from moto.stepfunctions.parser.asl.eval.program_state import ProgramError
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    from localaws.patches import sfn_execution

    sfn_execution.apply()
    sfn_execution.apply()  # idempotent: applied after every reset

    seen: list[tuple[object, object, object]] = []

    class Exec:
        error = None
        cause = None

        @property
        def exec_status(self) -> object:
            return None

        @exec_status.setter
        def exec_status(self, value: object) -> None:
            seen.append((getattr(value, "value", value), self.error, self.cause))

    execution = Exec()
    state = ProgramError({"error": "RolledBackOnAlarm", "cause": "alarm fired"})
    execution.exec_worker = SimpleNamespace(env=SimpleNamespace(program_state=lambda: state))  # type: ignore[attr-defined]
    BaseExecutionWorkerCommunication(execution)._reflect_execution_status()  # type: ignore[arg-type]
    assert seen == [("FAILED", "RolledBackOnAlarm", "alarm fired")]


def test_a_succeeded_execution_has_its_output_before_its_status() -> None:
    from types import SimpleNamespace

    from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    from localaws.patches import sfn_execution

    sfn_execution.apply()
    seen: list[tuple[object, object]] = []

    class Exec:
        output = None

        @property
        def exec_status(self) -> object:
            return None

        @exec_status.setter
        def exec_status(self, value: object) -> None:
            seen.append((getattr(value, "value", value), self.output))

    execution = Exec()
    env = SimpleNamespace(program_state=ProgramEnded, states=SimpleNamespace(get_input=lambda: {"ok": 1}))
    execution.exec_worker = SimpleNamespace(env=env)  # type: ignore[attr-defined]
    BaseExecutionWorkerCommunication(execution)._reflect_execution_status()  # type: ignore[arg-type]
    assert seen == [("SUCCEEDED", {"ok": 1})]
