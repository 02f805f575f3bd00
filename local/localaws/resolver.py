"""The local world's caching resolver: unbound (the Debian package), a child
process of the local AWS, between clients and the DNS authority
(dns_server.py), as the VPC resolver sits between tasks and Route 53.

It forwards every name to the authority (`forward-zone: name: "."`: zones
and namespaces are created after start) and caches each answer for its TTL,
negative answers for the SOA's negative TTL (RFC 2308), as unbound does.
`cache-max-ttl: 300`: the VPC resolver (AmazonProvidedDNS) answers a record
whose TTL is above 300 s with a TTL of 300 s (AWS re:Post, "how to change
ttl of aws local dns resolver"); TTLs at or below 300 s are honoured.

Foreground (`-d`), config and PID file in the run dir, a free port on
127.0.0.1; stopped by PID like cargo lambda watch. Its control port (plain
text, loopback) lets `aws.reset()` empty the caches between tests. Without the `unbound`
binary the local AWS refuses to start with a message naming the package."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from .ports import free_port

LOG = logging.getLogger("localaws.resolver")

INSTALL_HINT = (
    "unbound (the local DNS resolver) is not installed: install the Debian package "
    "'unbound' (`apt-get install -y --no-install-recommends unbound`, which local/setup.sh "
    "does when run as root)"
)


class ResolverUnavailable(RuntimeError):
    pass


def unbound_path() -> str:
    """The unbound binary: `$LOCALAWS_UNBOUND` when set (another build, or a
    path that does not exist to check the message below), else from PATH."""
    override = os.environ.get("LOCALAWS_UNBOUND")
    if override is not None:
        if shutil.which(override):
            return override
        raise ResolverUnavailable(f"{INSTALL_HINT} (LOCALAWS_UNBOUND={override!r} is not an executable)")
    for candidate in ("unbound", "/usr/sbin/unbound"):
        found = shutil.which(candidate)
        if found:
            return found
    raise ResolverUnavailable(INSTALL_HINT)


def config_text(run_dir: Path, port: int, authority_port: int, name: str = "unbound", control_port: int = 0) -> str:
    return f"""# Written by localaws (resolver.py) for this run; unbound -c <this> -d
server:
    interface: 127.0.0.1@{port}
    port: {port}
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "{run_dir}"
    pidfile: "{run_dir / (name + '.pid')}"
    use-syslog: no
    logfile: ""
    verbosity: 1
    num-threads: 1
    access-control: 127.0.0.0/8 allow
    # The authority is on loopback.
    do-not-query-localhost: no
    # No DNSSEC for the local zones: the iterator module only.
    module-config: "iterator"
    qname-minimisation: no
    # Cache by TTL; the VPC resolver caps TTLs above 300 s at 300 s.
    cache-min-ttl: 0
    cache-max-ttl: 300
    prefetch: no
    serve-expired: no
    # Every query is answered by the one authority: do not back off from it.
    infra-keep-probing: yes
    infra-host-ttl: 60

# Plain-text control on loopback: the harness flushes the cache on reset.
remote-control:
    control-enable: yes
    control-interface: 127.0.0.1
    control-port: {control_port}
    control-use-cert: no

forward-zone:
    name: "."
    forward-addr: 127.0.0.1@{authority_port}
"""


def start_unbound(
    run_dir: Path, authority_port: int, log_path: Path, port: int = 0, name: str = "unbound"
) -> tuple[subprocess.Popen[bytes], int]:
    """Starts unbound forwarding to 127.0.0.1:authority_port; returns (process, port).
    `name`: its config and PID files in run_dir (`<name>.conf`, `<name>.pid`)."""
    exe = unbound_path()
    port = port or free_port()
    control_port = free_port()
    conf = run_dir / f"{name}.conf"
    conf.write_text(config_text(run_dir, port, authority_port, name, control_port))
    checker = shutil.which("unbound-checkconf")
    if checker:
        check = subprocess.run([checker, str(conf)], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise RuntimeError(f"unbound-checkconf refused {conf}: {check.stdout}{check.stderr}")
    log = open(log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
    LOG.info("starting %s -d -c %s (port %d, forwarding to 127.0.0.1:%d)", exe, conf, port, authority_port)
    proc = subprocess.Popen(
        [exe, "-d", "-c", str(conf)],
        cwd=str(run_dir),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    CONTROL_PORTS.append(control_port)
    return proc, port


# Control ports of the unbound processes this process started.
CONTROL_PORTS: list[int] = []


def control(port: int, command: str, timeout: float = 2.0) -> str:
    """One unbound-control command over its plain-text protocol
    (`control-use-cert: no`): "UBCT1 <command>\n", the answer until EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"UBCT1 {command}\n".encode())
        chunks = []
        for _ in range(1000):  # bounded: the answer is a few lines
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


def flush_caches() -> list[str]:
    """Empties every started unbound's caches (answers, negative answers,
    forwarder state), as a fresh VPC would have them: `aws.reset()`."""
    out = []
    for port in list(CONTROL_PORTS):
        for command in ("flush_zone .", "flush_negative", "flush_infra all", "flush_requestlist"):
            try:
                out.append(control(port, command).strip())
            except OSError as e:
                LOG.warning("unbound control %d %r: %s", port, command, e)
                out.append(f"error: {e}")
    return out


def answers(host: str, port: int, timeout: float = 0.3) -> bool:
    """True when a DNS server answers anything (any rcode) on host:port/UDP."""
    import dns.exception
    import dns.message
    import dns.query

    q = dns.message.make_query("localaws-probe.invalid.", "A")
    try:
        dns.query.udp(q, host, port=port, timeout=timeout)
        return True
    except (dns.exception.DNSException, OSError):
        return False


def wait_answers(proc: subprocess.Popen[bytes], port: int, timeout: float = 15.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"unbound exited with code {proc.returncode} while starting (see unbound.log in the run dir)")
        if answers("127.0.0.1", port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"unbound did not answer on 127.0.0.1:{port} within {timeout:.0f} s")
