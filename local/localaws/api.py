"""Python API of the local AWS, for pytest fixtures and demo scripts.

    from localaws import LocalAws

    with LocalAws() as aws:                       # starts moto + cargo lambda watch
        ecs = aws.client("ecs")
        aws.fail_calls("route53", "ChangeResourceRecordSets", "throttle", first=1, last=3)
        aws.set_unhealthy(next=True)
        ...
        for change in aws.route53_changes(): ...

`LocalAws.attach()` talks to one already started by `python -m localaws up`
(it then owns no process and `close()` stops nothing)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from . import config
from .server import ENDPOINTS_FILE


class LocalAwsError(RuntimeError):
    pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def read_endpoints(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / ENDPOINTS_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def spawn_server(
    run_dir: Path,
    lambda_mode: str,
    lambda_url: str | None,
    concurrency: int,
    exit_with_parent: bool,
    extra_env: dict[str, str] | None,
    log_path: Path,
    warm: bool = False,
    timeout: float = 900.0,
    resolvers: int = 1,
) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "localaws",
        "serve",
        "--run-dir",
        str(run_dir),
        "--lambda",
        lambda_mode,
        "--concurrency",
        str(concurrency),
    ]
    if lambda_url:
        cmd += ["--lambda-url", lambda_url]
    if exit_with_parent:
        cmd.append("--exit-with-parent")
    if warm:
        cmd.append("--warm")
    cmd += ["--timeout", str(timeout)]
    if resolvers != 1:
        cmd += ["--resolvers", str(resolvers)]
    for k, v in (extra_env or {}).items():
        cmd += ["--function-env", f"{k}={v}"]
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    run_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    finally:
        log.close()


def wait_ready(proc: subprocess.Popen[bytes] | None, run_dir: Path, timeout: float, log_path: Path) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        doc = read_endpoints(run_dir)
        if doc and doc.get("ready") and (proc is None or doc.get("pid") == proc.pid):
            return doc
        if proc is not None and proc.poll() is not None:
            tail = _tail(log_path)
            raise LocalAwsError(f"local AWS exited with code {proc.returncode} while starting:\n{tail}")
        time.sleep(0.1)
    raise LocalAwsError(f"local AWS not ready after {timeout:.0f} s:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_pids(doc: dict[str, Any], timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Stops a local AWS described by endpoints.json: SIGTERM to the server
    (which stops its children), then, if anything is left, each recorded PID
    (cargo-lambda by its process group). `proc`: the server's Popen when this
    process started it (a finished child stays a zombie until reaped)."""
    server_pid = int(doc.get("pid", 0))

    def alive() -> bool:
        if proc is not None and proc.pid == server_pid:
            return proc.poll() is None
        return _pid_alive(server_pid)

    if server_pid and alive():
        os.kill(server_pid, signal.SIGTERM)
        deadline = time.time() + timeout
        while time.time() < deadline and alive():
            time.sleep(0.05)
    dns_doc = doc.get("dns") or {}
    for resolver_pid in dns_doc.get("resolverPids") or [dns_doc.get("resolverPid")]:
        if resolver_pid and _pid_alive(int(resolver_pid)):
            try:
                os.killpg(int(resolver_pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    lam = (doc.get("lambda") or {}).get("pid")
    if lam and _pid_alive(int(lam)):
        try:
            os.killpg(int(lam), signal.SIGKILL)
        except ProcessLookupError:
            pass
    if server_pid and alive():
        os.kill(server_pid, signal.SIGKILL)


class LocalAws:
    """A running local AWS. As a context manager it starts one (in a child
    process, moto and the patches live there) and stops it at exit."""

    def __init__(
        self,
        run_dir: str | Path | None = None,
        lambda_mode: str = "cargo",
        lambda_url: str | None = None,
        concurrency: int = 4,
        function_env: dict[str, str] | None = None,
        start_timeout: float = 900.0,
        warm: bool = True,
        resolvers: int = 1,
    ) -> None:
        """lambda_mode: "cargo" (cargo lambda watch on a free port), "url"
        (Task invokes go to `lambda_url`, e.g. a fake Lambda in tests) or
        "none". warm: with cargo, invoke every function once before start()
        returns, so first calls in a test are not builds. resolvers: how
        many independent unbound caches sit in front of the DNS authority
        (`resolvers()`; one by default)."""
        self.run_dir = Path(run_dir) if run_dir else config.default_run_dir()
        self.lambda_mode = "url" if lambda_url and lambda_mode == "cargo" else lambda_mode
        self.lambda_url_setting = lambda_url
        self.concurrency = concurrency
        self.function_env_extra = function_env or {}
        self.start_timeout = start_timeout
        self.warm = warm
        self.resolver_count = resolvers
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoints: dict[str, Any] = {}
        self.owned = False

    # ------------------------------------------------------------ lifecycle

    @classmethod
    def attach(cls, run_dir: str | Path | None = None) -> LocalAws:
        """Connects to a local AWS started with `python -m localaws up`."""
        self = cls(run_dir=run_dir)
        doc = read_endpoints(self.run_dir)
        if not doc or not _pid_alive(int(doc.get("pid", 0))):
            raise LocalAwsError(f"no local AWS running (no live {self.run_dir / ENDPOINTS_FILE}); run `python -m localaws up`")
        self.endpoints = doc
        return self

    def start(self) -> LocalAws:
        existing = read_endpoints(self.run_dir)
        if existing and _pid_alive(int(existing.get("pid", 0))):
            raise LocalAwsError(
                f"a local AWS already runs from {self.run_dir} (pid {existing['pid']}); "
                "stop it (`python -m localaws down`) or use another run_dir"
            )
        log_path = self.run_dir / "localaws.log"
        self.proc = spawn_server(
            self.run_dir,
            self.lambda_mode,
            self.lambda_url_setting,
            self.concurrency,
            True,
            self.function_env_extra,
            log_path,
            warm=self.warm and self.lambda_mode == "cargo",
            timeout=self.start_timeout,
            resolvers=self.resolver_count,
        )
        self.owned = True
        try:
            self.endpoints = wait_ready(self.proc, self.run_dir, self.start_timeout, log_path)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if not self.owned or self.proc is None:
            return
        doc = self.endpoints or read_endpoints(self.run_dir) or {"pid": self.proc.pid}
        doc.setdefault("pid", self.proc.pid)
        stop_pids(doc, proc=self.proc)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.owned = False

    def __enter__(self) -> LocalAws:
        return self.start() if not self.endpoints else self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------ endpoints

    @property
    def endpoint_url(self) -> str:
        return str(self.endpoints["endpointUrl"])

    @property
    def lambda_url(self) -> str | None:
        return (self.endpoints.get("lambda") or {}).get("url")

    @property
    def state_machine_arn(self) -> str:
        return config.STATE_MACHINE_ARN

    def env(self) -> dict[str, str]:
        """Environment for a process (the CLI, a script) that talks to this
        local AWS with the default credential chain."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": config.ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": config.SECRET_ACCESS_KEY,
            "AWS_REGION": config.REGION,
            "AWS_DEFAULT_REGION": config.REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, service: str, **kwargs: Any) -> Any:
        import boto3
        from botocore.config import Config

        cfg = Config(user_agent_extra=config.HARNESS_UA_MARKER, retries={"mode": "standard", "max_attempts": 5})
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=config.REGION,
            aws_access_key_id=config.ACCESS_KEY_ID,
            aws_secret_access_key=config.SECRET_ACCESS_KEY,
            config=kwargs.pop("config", cfg),
            **kwargs,
        )

    # ------------------------------------------------------------ control API

    def _control(self, method: str, path: str, body: dict[str, Any] | None = None, query: dict[str, Any] | None = None) -> Any:
        url = f"{self.endpoint_url}/_localaws/{path}"
        if query:
            from urllib.parse import urlencode

            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            raise LocalAwsError(f"control {method} {path}: HTTP {e.code}: {e.read().decode(errors='replace')}") from e

    def info(self) -> dict[str, Any]:
        return self._control("GET", "info")

    def reset(self) -> None:
        """Empties every moto backend and the harness state (logs, faults,
        health plans, alarm history)."""
        self._control("POST", "reset")

    def reset_log(self) -> None:
        self._control("POST", "reset-log")

    def calls(self, service: str | None = None, operation: str | None = None, caller: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        return self._control("GET", "calls", query={"service": service, "operation": operation, "caller": caller, "since": since})["calls"]

    def route53_changes(self, since: int = 0) -> list[dict[str, Any]]:
        return self._control("GET", "route53-changes", query={"since": since})["changes"]

    # faults

    def add_fault(self, **spec: Any) -> dict[str, Any]:
        return self._control("POST", "faults", spec)

    def fail_next(self, service: str, operation: str, kind: str = "throttle", nth: int = 1, caller: str = "function", **extra: Any) -> dict[str, Any]:
        """The `nth` matching call from now fails."""
        return self.add_fault(service=service, operation=operation, kind=kind, nth=nth, caller=caller, **extra)

    def fail_calls(self, service: str, operation: str, kind: str, first: int, last: int | None, caller: str = "function", **extra: Any) -> dict[str, Any]:
        """Matching calls first..last (1-based from now; last=None: all after first) fail."""
        return self.add_fault(service=service, operation=operation, kind=kind, first=first, last=last, caller=caller, **extra)

    def fail_for(self, service: str, operation: str, kind: str, seconds: float, caller: str = "function", **extra: Any) -> dict[str, Any]:
        """Every matching call in the next `seconds` fails."""
        return self.add_fault(service=service, operation=operation, kind=kind, seconds=seconds, caller=caller, **extra)

    def faults(self) -> list[dict[str, Any]]:
        return self._control("GET", "faults")["faults"]

    def clear_faults(self) -> None:
        self._control("DELETE", "faults", {})

    # Route 53 rate limit

    def route53_rate_limit(self, enabled: bool = True, rate: float = 5.0, burst: float | None = None, caller: str = "any") -> dict[str, Any]:
        return self._control("POST", "route53-rate-limit", {"enabled": enabled, "rate": rate, "burst": burst, "caller": caller})

    # ECS task set health

    def set_task_set_health(
        self,
        mode: str,
        external_id: str | None = None,
        task_set: str | None = None,
        next: bool = False,  # noqa: A002 - the control API's word
        delay_seconds: float = 0.0,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"mode": mode, "delaySeconds": delay_seconds, "next": next}
        if external_id:
            body["externalId"] = external_id
        if task_set:
            body["taskSet"] = task_set
        return self._control("POST", "task-set-health", body)

    def set_unhealthy(self, external_id: str | None = None, task_set: str | None = None, next: bool = False) -> dict[str, Any]:  # noqa: A002
        """Instances of that task set (or of the next one created) stay UNHEALTHY."""
        return self.set_task_set_health("unhealthy", external_id, task_set, next)

    def set_slow(self, delay_seconds: float, external_id: str | None = None, task_set: str | None = None, next: bool = False) -> dict[str, Any]:  # noqa: A002
        """Instances stay pending/UNHEALTHY for `delay_seconds`, then turn healthy."""
        return self.set_task_set_health("slow", external_id, task_set, next, delay_seconds)

    def set_healthy(self, external_id: str | None = None, task_set: str | None = None) -> dict[str, Any]:
        return self.set_task_set_health("healthy", external_id, task_set)

    def task_sets(self) -> list[dict[str, Any]]:
        return self._control("GET", "task-sets")["taskSets"]

    # CloudWatch alarms

    def alarm_events(self, enabled: bool | None = None) -> dict[str, Any]:
        """Switches alarm event delivery (None: only read) and returns the deliveries."""
        if enabled is None:
            return self._control("GET", "alarm-events")
        return self._control("POST", "alarm-events", {"enabled": enabled})

    def sfn_status_events(self, enabled: bool | None = None) -> dict[str, Any]:
        """Switches delivery of Step Functions execution status change events to
        the repair function (None: only read); returns the deliveries."""
        if enabled is None:
            return self._control("GET", "sfn-status-events")
        return self._control("POST", "sfn-status-events", {"enabled": enabled})

    def redeliver_sfn_status_event(self, event_id: str) -> None:
        """Delivers a status change event again, in the background (EventBridge
        delivers at least once); the delivery shows in `sfn_status_events()` with
        `redelivery: true`."""
        self._control("POST", "sfn-status-events", {"redeliver": event_id})

    # EventBridge (the deployment events)

    def put_events(
        self, source: str | None = "ecs-dns-canary", detail_type: str | None = None, since: int = 0
    ) -> list[dict[str, Any]]:
        """The entries PutEvents accepted, oldest first (`seq`, `time`,
        `eventBusName`, `source`, `detail-type`, `detail` parsed, `resources`).
        source None: from any source."""
        query = {"source": source, "detailType": detail_type, "since": since}
        return self._control("GET", "events", query=query)["events"]

    def fail_put_events(self, n: int) -> None:
        """The next n PutEvents entries fail (FailedEntryCount; the state
        machine's events:putEvents Task fails with EventBridge.FailedEntry)."""
        self._control("POST", "events", {"failNext": n})

    def set_alarm_state(self, alarm_name: str, state: str, reason: str = "set by test") -> None:
        self.client("cloudwatch").set_alarm_state(AlarmName=alarm_name, StateValue=state, StateReason=reason)

    def alarm_history(self, alarm_name: str | None = None) -> list[dict[str, Any]]:
        return self._control("GET", "alarm-history", query={"alarmName": alarm_name})["items"]

    def alarm_evaluation(
        self,
        enabled: bool | None = None,
        tick_seconds: float | None = None,
        delay_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Metric alarm evaluation (patches/cloudwatch_eval.py): on/off, how
        often (10 s on AWS), the metric data delay. None leaves a setting."""
        body = {k: v for k, v in {"enabled": enabled, "tickSeconds": tick_seconds, "delaySeconds": delay_seconds}.items() if v is not None}
        if not body:
            return self._control("GET", "alarm-evaluation")
        return self._control("POST", "alarm-evaluation", body)

    def evaluate_alarms(self, at: float | None = None) -> list[dict[str, Any]]:
        """Evaluates every metric alarm once now (or as if the clock read
        `at`, epoch seconds) and returns the transitions it made."""
        body: dict[str, Any] = {"evaluateNow": True}
        if at is not None:
            body["at"] = at
        return self._control("POST", "alarm-evaluation", body)["transitions"]

    def cloudwatch_rate_limit(
        self,
        enabled: bool = True,
        describe_alarms: float = 9.0,
        describe_alarm_history: float = 20.0,
        burst: dict[str, float] | None = None,
        caller: str = "any",
    ) -> dict[str, Any]:
        """CloudWatch's DescribeAlarms 9/s and DescribeAlarmHistory 20/s per
        account and Region (service quotas); off after `reset()`."""
        rates = {"DescribeAlarms": describe_alarms, "DescribeAlarmHistory": describe_alarm_history}
        return self._control("POST", "cloudwatch-rate-limit", {"enabled": enabled, "rates": rates, "burst": burst, "caller": caller})

    def stepfunctions_rate_limit(
        self,
        enabled: bool = True,
        rates: dict[str, float] | None = None,
        burst: dict[str, float] | None = None,
        caller: str = "any",
    ) -> dict[str, Any]:
        """Step Functions' API throttling quotas (token bucket per account and
        Region: GetExecutionHistory 400 / 20 per s, ListExecutions 200 / 5, ...,
        `ratelimit.STEPFUNCTIONS_RATES`); off after `reset()`."""
        return self._control("POST", "stepfunctions-rate-limit",
                             {"enabled": enabled, "rates": rates, "burst": burst, "caller": caller})

    def dynamodb_ttl(self, sweep_seconds: float | None = None, delay_seconds: float | None = None,
                     sweep_now: bool = False) -> dict[str, Any]:
        """DynamoDB TTL emulation (patches/dynamodb_ttl.py): expired items are
        deleted by a sweep every `sweep_seconds`, at least `delay_seconds`
        after expiry; reads see them until then."""
        body: dict[str, Any] = {"sweepNow": sweep_now}
        if sweep_seconds is not None:
            body["sweepSeconds"] = sweep_seconds
        if delay_seconds is not None:
            body["delaySeconds"] = delay_seconds
        return self._control("POST", "dynamodb-ttl", body)

    def point_lambda(self, url: str | None) -> None:
        """Sends Step Functions Task invokes and alarm events to `url`."""
        self._control("POST", "lambda", {"url": url})

    # DNS (dns_server.py, resolver.py)

    def dns_authority(self) -> tuple[str, int]:
        """(host, port) of the DNS authority (answers from Route 53 and Cloud Map state)."""
        from .dns_server import parse_hostport

        return parse_hostport(str(self.endpoints["dns"]["authority"]))

    def resolver(self) -> tuple[str, int]:
        """(host, port) of the caching resolver (unbound) clients should ask."""
        from .dns_server import parse_hostport

        return parse_hostport(str(self.endpoints["dns"]["resolver"]))

    def resolvers(self) -> list[tuple[str, int]]:
        """(host, port) of every unbound cache (`LocalAws(resolvers=N)`; one by default)."""
        from .dns_server import parse_hostport

        dns_doc = self.endpoints["dns"]
        return [parse_hostport(str(r)) for r in dns_doc.get("resolvers") or [dns_doc["resolver"]]]

    def dns(self) -> dict[str, Any]:
        """DNS endpoints, settings and the authority's query count."""
        return self._control("GET", "dns")

    def route53_propagation(self, seconds: float, spread: float = 0.0) -> dict[str, Any]:
        """Route 53 changes reach DNS `seconds + uniform(0, spread)` after
        ChangeResourceRecordSets; GetChange is PENDING until then."""
        return self._control("POST", "dns/route53-propagation", {"seconds": seconds, "spread": spread})

    def cloudmap_dns_delay(self, seconds: float) -> dict[str, Any]:
        """Register/DeregisterInstance reach the namespace's DNS answers `seconds` later."""
        return self._control("POST", "dns/cloudmap-delay", {"seconds": seconds})
    # Tasks that serve (localaws/tasks.py, patches/ecs_scheduler.py)

    def set_image_behaviour(self, image: str, error_rate: float = 0.0, latency_ms: float = 0, health_check: str = "pass") -> dict[str, Any]:
        """What every task of `image` (a full image reference, or a tag
        suffix such as ":v3") does: answer 500/503 with probability
        `error_rate`, add `latency_ms` to each `GET /`, and pass or fail its
        container health check ("pass" | "fail"). Applies to running tasks
        at once (their health checks run again)."""
        return self._control(
            "POST", "images", {"image": image, "errorRate": error_rate, "latencyMs": latency_ms, "healthCheck": health_check}
        )["images"]

    def images(self) -> dict[str, dict[str, Any]]:
        return self._control("GET", "images")["images"]

    def tasks(self) -> list[dict[str, Any]]:
        """Every task the scheduler stand-in runs or is stopping: address,
        port, image, version, lastStatus, health, request counts."""
        return self._control("GET", "tasks")["tasks"]

    def stopped_tasks(self) -> list[dict[str, Any]]:
        """Tasks stopped since the last reset (by DeleteTaskSet or a scale
        down): what `tasks()` showed, with `stoppedAt` (the server had
        stopped), `stopRequestedAt` (the API call that stopped it) and the
        requests it served."""
        return self._control("GET", "tasks")["stopped"]

    def task_port(self) -> int:
        """The single port every task serves on (its address differs)."""
        return int((self.endpoints.get("tasks") or {}).get("port") or self._control("GET", "tasks")["port"])

    def ecs_realism(
        self,
        task_start_seconds: float | None = None,
        task_stop_seconds: float | None = None,
        stop_timeout_seconds: float | None = None,
        read_lag_ms: float | None = None,
        unknown_health: bool | None = None,
        create_task_set_checks: bool | None = None,
    ) -> dict[str, Any]:
        """Changes the ECS / Cloud Map realism settings given (None: unchanged)
        and returns them all; `reset()` puts the fast defaults back. See
        local/README.md, "Realistic mode"."""
        body = {
            "taskStartSeconds": task_start_seconds,
            "taskStopSeconds": task_stop_seconds,
            "stopTimeoutSeconds": stop_timeout_seconds,
            "readLagMs": read_lag_ms,
            "unknownHealth": unknown_health,
            "createTaskSetChecks": create_task_set_checks,
        }
        return self._control("POST", "ecs-realism", {k: v for k, v in body.items() if v is not None})
