"""The local AWS process: moto in server mode (in this process, patched),
`cargo lambda watch` as a child process, the DNS authority (threads) and
unbound (a child process) in front of it, the control API, and an
`endpoints.json` describing it all. Started by `python -m localaws serve`
(which `up` and `LocalAws` run); stops every child it started, by PID, on
SIGTERM, SIGINT, an exception, or (with `exit_with_parent`) when the process
that started it is gone."""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from . import config
from .ports import free_port
from .state import STATE

LOG = logging.getLogger("localaws.server")

ENDPOINTS_FILE = "endpoints.json"


def function_env(moto_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the Lambda functions run with locally."""
    env = {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": config.ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": config.SECRET_ACCESS_KEY,
        "AWS_REGION": config.REGION,
        "AWS_DEFAULT_REGION": config.REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_SDK_UA_APP_ID": config.FUNCTION_UA_APP_ID,
        "CANARY_INSYNC_POLL_MS": "50",
        "STATE_MACHINE_ARN": config.STATE_MACHINE_ARN,
        "BAKE_TABLE": config.BAKE_TABLE,
        "RUST_LOG": "info",
    }
    env.update(extra or {})
    return env


def _http_answers(host: str, port: int, path: str = "/", timeout: float = 1.0) -> bool:
    try:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.request("GET", path)
        conn.getresponse().read()
        conn.close()
        return True
    except (OSError, http.client.HTTPException):
        return False


def wait_until(pred: Any, timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before answering")
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not answer within {timeout:.0f} s")


def stop_process_group(proc: subprocess.Popen[bytes], name: str, grace: float = 5.0) -> None:
    """Stops a child started with start_new_session=True, with its children
    (cargo-lambda's `cargo run` workers), by its PID (= its process group id)."""
    if proc.poll() is not None:
        return
    pid = proc.pid
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            LOG.info("%s (pid %d) stopped with %s", name, pid, sig.name)
            break
        except subprocess.TimeoutExpired:
            continue
    # Reap anything left in the group (workers that ignored the signal).
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def start_cargo_lambda(port: int, moto_url: str, log_path: Path, concurrency: int, extra_env: dict[str, str]) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PATH"] = f"{config.venv_bin()}{os.pathsep}{env.get('PATH', '')}"
    cmd = [
        "cargo",
        "lambda",
        "watch",
        "-A",
        "127.0.0.1",
        "-P",
        str(port),
        "--ignore-changes",
        "--concurrency",
        str(concurrency),
    ]
    for key, value in function_env(moto_url, extra_env).items():
        cmd += ["--env-var", f"{key}={value}"]
    log = open(log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
    LOG.info("starting %s", " ".join(cmd))
    return subprocess.Popen(
        cmd,
        cwd=str(config.repo_root()),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def workspace_functions() -> list[str]:
    """The Lambda functions of the workspace: package names under functions/."""
    names = []
    for manifest in sorted((config.repo_root() / "functions").glob("*/Cargo.toml")):
        m = re.search(r'^\s*name\s*=\s*"([^"]+)"', manifest.read_text(), re.MULTILINE)
        if m:
            names.append(m.group(1))
    return names


def warm_functions(lambda_url: str, timeout: float) -> list[dict[str, Any]]:
    """Invokes every function once, in parallel, so cargo-lambda builds and
    starts it now rather than on a test's first call (a build can take
    minutes; a start about a second). The payload is not a valid input: each
    function answers an error without calling AWS."""
    from concurrent.futures import ThreadPoolExecutor

    from . import lambda_client

    def one(name: str) -> dict[str, Any]:
        started = time.time()
        try:
            inv = lambda_client.invoke(lambda_url, name, b'{"localawsWarmup": true}', timeout=timeout)
            result = f"error {inv.error_type}" if inv.function_error else "ok"
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            result = f"failed: {e}"
        return {"function": name, "result": result, "seconds": round(time.time() - started, 2)}

    names = workspace_functions()
    if not names:
        return []
    with ThreadPoolExecutor(len(names)) as pool:
        return list(pool.map(one, names))


def _write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)


def serve(
    run_dir: Path,
    lambda_mode: str = "cargo",
    lambda_url: str | None = None,
    host: str = "127.0.0.1",
    moto_port: int = 0,
    lambda_port: int = 0,
    concurrency: int = 4,
    exit_with_parent: bool = False,
    extra_env: dict[str, str] | None = None,
    ready_timeout: float = 120.0,
    warm: bool = False,
    resolvers: int = 1,
) -> int:
    """Runs until stopped. Returns the process exit code."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    from . import control, patches, tasks
    from .app import LocalAwsApp
    from .resolver import ResolverUnavailable

    run_dir.mkdir(parents=True, exist_ok=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    stop = threading.Event()
    parent = os.getppid()
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    endpoints_path = run_dir / ENDPOINTS_FILE

    def on_signal(signum: int, _frame: Any) -> None:
        LOG.info("signal %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    server = None
    dns_authority = None
    try:
        patches.apply_all()
        app = LocalAwsApp(DomainDispatcherApplication(create_backend_app))
        server = make_server(host, moto_port, app, threaded=True, request_handler=MotoRequestHandler)
        server.daemon_threads = True  # type: ignore[attr-defined]
        server.block_on_close = False  # type: ignore[attr-defined]
        port = int(server.server_address[1])
        moto_url = f"http://{host}:{port}"
        # moto calls itself on http://localhost:$MOTO_PORT in a few places.
        os.environ["MOTO_PORT"] = str(port)
        threading.Thread(target=server.serve_forever, name="moto-server", daemon=True).start()
        wait_until(lambda: _http_answers(host, port, "/_localaws/health"), 30, "moto")
        LOG.info("moto answers on %s", moto_url)

        # DNS: the authority (threads of this process) and unbound in front of it
        # (one, or `resolvers` independent caches, see local/README.md).
        from . import dns_server, resolver

        dns_authority = dns_server.DnsServer(host)
        authority_port = dns_authority.start()
        resolver_ports: list[int] = []
        resolver_pids: list[int] = []
        for i in range(max(1, resolvers)):
            suffix = "" if i == 0 else f"-{i}"
            unbound, resolver_port = resolver.start_unbound(run_dir, authority_port, run_dir / f"unbound{suffix}.log", name=f"unbound{suffix}")
            children.append((f"unbound{suffix}", unbound))
            resolver.wait_answers(unbound, resolver_port)
            resolver_ports.append(resolver_port)
            resolver_pids.append(unbound.pid)
        dns_info = {
            "authority": f"{host}:{authority_port}",
            "resolver": f"127.0.0.1:{resolver_ports[0]}",
            "resolverPid": resolver_pids[0],
            "resolvers": [f"127.0.0.1:{p}" for p in resolver_ports],
            "resolverPids": resolver_pids,
            "settings": dns_server.PUBLISHER.settings.to_json(),
        }
        LOG.info("DNS: authority %s, resolvers %s (unbound pids %s)", dns_info["authority"], dns_info["resolvers"], resolver_pids)
        # The functions can resolve names as clients do (issue 12, item 9:
        # "registered is not resolvable"); settings given by the caller win.
        extra_env = {
            "LOCALAWS_DNS_RESOLVER": str(dns_info["resolver"]),
            "LOCALAWS_DNS_AUTHORITY": str(dns_info["authority"]),
            **(extra_env or {}),
        }

        lambda_info: dict[str, Any] = {"mode": lambda_mode, "url": None, "port": None, "pid": None}
        if lambda_mode == "cargo":
            lport = lambda_port or free_port()
            proc = start_cargo_lambda(lport, moto_url, run_dir / "cargo-lambda.log", concurrency, extra_env or {})
            children.append(("cargo lambda watch", proc))
            lambda_info.update(url=f"http://127.0.0.1:{lport}", port=lport, pid=proc.pid)
            wait_until(lambda: _http_answers("127.0.0.1", lport), ready_timeout, "cargo lambda watch", proc)
            LOG.info("cargo lambda watch answers on %s (pid %d)", lambda_info["url"], proc.pid)
            if warm:
                lambda_info["warmup"] = warm_functions(lambda_info["url"], ready_timeout)
                LOG.info("functions warmed: %s", lambda_info["warmup"])
        elif lambda_mode == "url":
            lambda_info["url"] = lambda_url
        elif lambda_mode != "none":
            raise ValueError(f"lambda mode must be cargo, url or none, not {lambda_mode!r}")
        with STATE.lock:
            STATE.lambda_url = lambda_info["url"]

        doc = {
            "ready": True,
            "pid": os.getpid(),
            "startedAt": time.time(),
            "endpointUrl": moto_url,
            "moto": {"host": host, "port": port, "url": moto_url, "pid": os.getpid()},
            "lambda": lambda_info,
            "dns": dns_info,
            "controlUrl": f"{moto_url}/_localaws",
            "region": config.REGION,
            "accountId": config.ACCOUNT_ID,
            "stateMachineArn": config.STATE_MACHINE_ARN,
            "functionEnv": function_env(moto_url, extra_env),
            "pids": [os.getpid()] + [p.pid for _, p in children],
            "logs": {
                "server": str(run_dir / "localaws.log"),
                "lambda": str(run_dir / "cargo-lambda.log"),
                "unbound": str(run_dir / "unbound.log"),
            },
            "tasks": tasks.NETWORK.info(),
        }
        control.INFO.update(doc)
        _write_json_atomic(endpoints_path, doc)
        LOG.info("local AWS ready: %s", json.dumps({"endpointUrl": moto_url, "lambdaUrl": lambda_info["url"]}))

        while not stop.wait(0.5):
            if exit_with_parent and os.getppid() != parent:
                LOG.info("parent process %d is gone: stopping", parent)
                break
            for name, proc in children:
                if proc.poll() is not None and not stop.is_set():
                    LOG.error("%s (pid %d) exited with code %s", name, proc.pid, proc.returncode)
                    children.remove((name, proc))
                    break
        return 0
    except ResolverUnavailable as e:
        LOG.error("local AWS cannot start: %s", e)
        return 1
    except Exception:
        LOG.exception("local AWS failed")
        return 1
    finally:
        for name, proc in reversed(children):
            stop_process_group(proc, name)
        if server is not None:
            server.shutdown()
        if dns_authority is not None:
            dns_authority.stop()
        try:
            from .patches import ecs_scheduler

            ecs_scheduler.stop_all(wait=True, timeout=2.0)  # tasks: deregistered, then stopped gracefully
        except Exception:  # noqa: BLE001 - exiting anyway
            LOG.exception("stopping the tasks failed")
        for t in STATE.timers:
            t.cancel()
        try:
            if endpoints_path.exists() and json.loads(endpoints_path.read_text()).get("pid") == os.getpid():
                endpoints_path.unlink()
        except (OSError, ValueError):
            pass
        LOG.info("local AWS stopped")
        logging.shutdown()
        sys.stdout.flush()
