"""Step Functions: run state machines for real.

Stock moto keeps every execution RUNNING with a canned history. Its
`execute_state_machine` switch makes it run the ASL with its interpreter (the
one LocalStack wrote): Pass, Wait (real time), Choice, Task, Retry, Catch,
`.waitForTaskToken`, a full GetExecutionHistory. A moto reset does not touch
this setting, but `apply()` is also called after every reset to be sure.

An execution's end is also made atomic for readers. DescribeExecution on AWS
returns a FAILED execution with its `error` and `cause` (Step Functions API
Reference, DescribeExecution: "error: The error string if the execution
failed"; the record is written once). moto's interpreter sets the status
first and the error and cause after it, so a reader polling from another
thread could see FAILED with no error (or SUCCEEDED with no output). The status-change events
(sfn_status_events.py) start a thread from the status setter, which made
that window wide enough for the reliability matrix to hit it in CI. Here the
error and cause (or the output) are set before moto sets the status."""

from __future__ import annotations

from typing import Any

from moto.core.config import default_user_config

_MARK = "_localaws_error_first"


def _error_first(original: Any) -> Any:
    def reflect(self: Any) -> None:
        from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded, ProgramError

        state = self.execution.exec_worker.env.program_state()
        if isinstance(state, ProgramEnded):
            self.execution.output = self.execution.exec_worker.env.states.get_input()
        elif isinstance(state, ProgramError):
            details = state.error or {}
            self.execution.error = details.get("error")
            self.execution.cause = details.get("cause")
        original(self)

    setattr(reflect, _MARK, True)
    return reflect


def apply() -> None:
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication as Comm

    if not getattr(Comm._reflect_execution_status, _MARK, False):
        Comm._reflect_execution_status = _error_first(Comm._reflect_execution_status)  # type: ignore[method-assign]  # patches moto's method
