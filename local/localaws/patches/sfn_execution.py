"""Step Functions: run state machines for real.

Stock moto keeps every execution RUNNING with a canned history. Its
`execute_state_machine` switch makes it run the ASL with its interpreter (the
one LocalStack wrote): Pass, Wait (real time), Choice, Task, Retry, Catch,
`.waitForTaskToken`, a full GetExecutionHistory. A moto reset does not touch
this setting, but `apply()` is also called after every reset to be sure."""

from __future__ import annotations

from moto.core.config import default_user_config


def apply() -> None:
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
