"""`python -m localaws up|status|down`, endpoints.json, and stopping by PID."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localaws import LocalAws

LOCAL = Path(__file__).resolve().parents[1]


def cli(run_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(LOCAL))
    return subprocess.run(
        [sys.executable, "-m", "localaws", "--run-dir", str(run_dir), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not alive
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def wait_dead(pid: int, timeout: float = 15) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_up_status_down_without_lambda(tmp_path: Path) -> None:
    r = cli(tmp_path, "up", "--lambda", "none")
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "endpoints.json").read_text())
    assert doc["ready"] and doc["endpointUrl"].startswith("http://127.0.0.1:")
    # Without cargo-lambda the only child is unbound, the DNS resolver.
    assert doc["moto"]["port"] != 9000 and doc["pids"] == [doc["pid"], doc["dns"]["resolverPid"]]
    assert doc["stateMachineArn"] == "arn:aws:states:us-east-1:123456789012:stateMachine:ecs-dns-canary"
    try:
        r = cli(tmp_path, "status", "--json")
        assert r.returncode == 0 and json.loads(r.stdout)["motoAnswers"] is True
        # a second `up` finds it running and starts nothing
        assert "already running" in cli(tmp_path, "up", "--lambda", "none").stdout
        aws = LocalAws.attach(tmp_path)
        assert aws.info()["lambda"]["mode"] == "none"
    finally:
        r = cli(tmp_path, "down")
    assert r.returncode == 0
    assert wait_dead(doc["pid"])
    assert wait_dead(doc["dns"]["resolverPid"]), "unbound outlived the local AWS"
    assert not (tmp_path / "endpoints.json").exists()
    assert cli(tmp_path, "status").returncode == 3


def test_local_aws_stops_when_its_parent_dies(tmp_path: Path) -> None:
    code = (
        "import sys, time; sys.path.insert(0, %r)\n"
        "from localaws import LocalAws\n"
        "aws = LocalAws(run_dir=%r, lambda_mode='none').start()\n"
        "print(aws.endpoints['pid'], flush=True)\n"
        "time.sleep(60)\n"
    ) % (str(LOCAL), str(tmp_path))
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        server_pid = int(parent.stdout.readline())
        assert alive(server_pid)
        parent.kill()
        parent.wait()
        assert wait_dead(server_pid, 10), "the server outlived the process that started it"
    finally:
        if parent.poll() is None:
            parent.kill()


@pytest.mark.skipif(shutil.which("cargo") is None, reason="needs cargo (cargo-lambda runs the workspace's binaries)")
def test_cargo_lambda_watch_is_started_and_stopped_by_pid(tmp_path: Path) -> None:
    r = cli(tmp_path, "up", "--no-warm", timeout=300)
    assert r.returncode == 0, r.stderr + (tmp_path / "localaws.log").read_text(errors="replace")[-3000:]
    doc = json.loads((tmp_path / "endpoints.json").read_text())
    lam = doc["lambda"]
    try:
        assert lam["mode"] == "cargo" and lam["port"] not in (9000, doc["moto"]["port"])
        assert alive(lam["pid"]) and lam["pid"] in doc["pids"]
        status = json.loads(cli(tmp_path, "status", "--json").stdout)
        assert status["lambdaAnswers"] is True
        env = doc["functionEnv"]
        assert env["AWS_ENDPOINT_URL"] == doc["endpointUrl"]
        assert env["CANARY_INSYNC_POLL_MS"] == "50" and env["AWS_REGION"] == "us-east-1"
        assert env["STATE_MACHINE_ARN"] == doc["stateMachineArn"]
    finally:
        cli(tmp_path, "down")
    assert wait_dead(doc["pid"])
    assert wait_dead(lam["pid"])
    # nothing of cargo-lambda's process group is left
    with pytest.raises(ProcessLookupError):
        os.killpg(lam["pid"], 0)


def test_foreground_up_stops_everything_on_sigint(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(LOCAL))
    proc = subprocess.Popen(
        [sys.executable, "-m", "localaws", "--run-dir", str(tmp_path), "up", "--foreground", "--lambda", "none"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 60
        while not (tmp_path / "endpoints.json").exists() and time.time() < deadline:
            time.sleep(0.1)
        assert (tmp_path / "endpoints.json").exists()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        assert not (tmp_path / "endpoints.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
