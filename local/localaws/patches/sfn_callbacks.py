"""Step Functions: SendTaskFailure and StopExecution keep their `cause`/`error`.

moto's HTTP layer passed only `error` of SendTaskFailure to its interpreter,
dropping `cause`: the failed bake (and a Fail state with `CausePath`) had no
cause, where AWS keeps it. The alarm-rollback function ends a bake with
`SendTaskFailure(error="AlarmFiring", cause=<which alarm, what it did>)`, and
the execution's Fail cause must name the alarm. Likewise StopExecution
dropped both `error` and `cause`, and an execution waiting for a task token
stayed RUNNING until the wait's timeout; now it reads ABORTED at once (its
ExecutionAborted history event still comes when the waiting state ends)."""

from __future__ import annotations

import datetime
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.stepfunctions import responses as sfn_responses


def _send_task_failure(self: Any) -> EmptyResult:
    task_token = self._get_param("taskToken")
    error = self._get_param("error")
    cause = self._get_param("cause")
    self.stepfunction_backend.send_task_failure(task_token, error=error, cause=cause)
    return EmptyResult()


def _stop_execution(self: Any) -> ActionResult:
    arn = self._get_param("executionArn")
    error = self._get_param("error")
    cause = self._get_param("cause")
    backend = self.stepfunction_backend
    if hasattr(backend, "_get_state_machine_for_execution"):
        backend._validate_execution_arn(arn)
        machine = backend._get_state_machine_for_execution(arn)
        execution = next((x for x in machine.executions if x.execution_arn == arn), None)
        if execution is not None:
            from moto.core.utils import utcnow

            from moto.stepfunctions.parser.api import ExecutionStatus

            stop_date = utcnow()
            execution.stop(stop_date=stop_date, error=error or "", cause=cause or "")
            # The interpreter notices the stop only when the current state
            # ends (a bake waiting for its token: at its timeout). Report the
            # execution ABORTED at once, as AWS does; the interpreter runs no
            # further state.
            if getattr(execution, "exec_status", None) == ExecutionStatus.RUNNING:
                execution.exec_status = ExecutionStatus.ABORTED
                execution.stop_date = stop_date
                execution.error = error
                execution.cause = cause
            return ActionResult({"stopDate": getattr(execution, "stop_date", None) or datetime.datetime.now(datetime.timezone.utc)})
    execution = backend.stop_execution(arn)
    return ActionResult({"stopDate": execution.stop_date})


def apply() -> None:
    sfn_responses.StepFunctionResponse.send_task_failure = _send_task_failure  # type: ignore[method-assign]  # patches moto's method
    sfn_responses.StepFunctionResponse.stop_execution = _stop_execution  # type: ignore[method-assign]  # patches moto's method
