"""Step Functions: SendTaskHeartbeat succeeds for a task that still waits
for its token, whether or not its state sets `HeartbeatSeconds`.

The Step Functions API Reference (SendTaskHeartbeat) describes the call as
reporting that the task identified by the token is still making progress;
it answers `TaskDoesNotExist`, `TaskTimedOut` or `InvalidToken` only when
the task is gone or the token is not one. moto's interpreter answered
`InvalidToken` for every task without `HeartbeatSeconds` (it only notifies a
heartbeat clock when there is one). The alarm-rollback function sends a
heartbeat to check that a bake found in the bake registry still waits
(`aws::sfn::task_waiting`), and the bakes set no `HeartbeatSeconds`."""

from __future__ import annotations

from typing import Any


def _send_task_heartbeat(self: Any, task_token: str) -> Any:
    from moto.stepfunctions.parser.api import (
        ExecutionStatus,
        InvalidToken,
        SendTaskHeartbeatOutput,
        TaskDoesNotExist,
        TaskTimedOut,
    )
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackConsumerTimeout

    for execution in self._get_executions(ExecutionStatus.RUNNING):
        worker = getattr(execution, "exec_worker", None)
        if worker is None:
            continue
        endpoint = worker.env.callback_pool_manager.get(task_token)
        if endpoint is None:
            continue
        error = endpoint.consumer_error
        if error is not None:
            if isinstance(error, CallbackConsumerTimeout):
                # moto's AWSError needs the message and the error type
                # (without them this raised a TypeError, an HTTP 500).
                raise TaskTimedOut("Task Timed Out", "TaskTimedOut")
            raise TaskDoesNotExist("Task Does Not Exist", "TaskDoesNotExist")
        if endpoint.get_outcome() is not None:
            # The token was already used (SendTaskSuccess / SendTaskFailure).
            raise TaskDoesNotExist("Task Does Not Exist", "TaskDoesNotExist")
        if endpoint._notify_event.is_set():
            # No outcome, but the task stopped waiting: its TimeoutSeconds
            # passed (moto interrupts the endpoint when the task ends and
            # keeps it in the pool). AWS answers TaskTimedOut for the token
            # of a task that timed out (API Reference, SendTaskHeartbeat).
            raise TaskTimedOut("Task Timed Out", "TaskTimedOut")
        endpoint.notify_heartbeat()
        return SendTaskHeartbeatOutput()
    raise InvalidToken()


def apply() -> None:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    StepFunctionsParserBackend.send_task_heartbeat = _send_task_heartbeat  # type: ignore[method-assign]  # patches moto's method
