"""The project's local AWS: moto in server mode (patched, see `patches/`),
`cargo lambda watch` serving the workspace's functions, and a control API
for tests (faults, Route 53 rate limit, ECS task-set health, call logs).

Start it with `python -m localaws up` or, from Python, `with LocalAws() as aws:`.
"""

from .api import LocalAws, LocalAwsError

__all__ = ["LocalAws", "LocalAwsError"]
