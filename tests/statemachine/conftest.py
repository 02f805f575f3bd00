import pytest

import harness


@pytest.fixture(scope="session")
def sfn():
    """One in-process moto with the definition loaded, shared by all runs."""
    interpreter = harness.Interpreter()
    yield interpreter
    interpreter.close()
