"""`python -m localaws up|down|status|serve` (run with the project venv:
`.venv/bin/python -m localaws ...`).

up      start the local AWS in the background (moto + cargo lambda watch),
        wait until both answer, print the endpoints; `--foreground` stays
        attached and stops everything on Ctrl-C.
down    stop the local AWS recorded in .local/run/endpoints.json, by PID.
status  show whether it runs and answers (exit 0 when it does).
serve   the server process itself (used by `up` and LocalAws).
dig     ask the running local AWS's resolver (or, with --authority, its DNS
        server) one question: `dig my-cname.ns-1` (dnspython; no bind tools needed)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from . import config


def _parse_env(pairs: list[str]) -> dict[str, str]:
    out = {}
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep:
            raise SystemExit(f"--function-env wants KEY=VALUE, got {p!r}")
        out[k] = v
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localaws", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", type=Path, default=config.default_run_dir(), help="where endpoints.json and logs go")
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("up", "serve"):
        p = sub.add_parser(name)
        p.add_argument("--run-dir", type=Path, default=argparse.SUPPRESS)
        p.add_argument("--lambda", dest="lambda_mode", choices=["cargo", "url", "none"], default="cargo")
        p.add_argument("--lambda-url", default=None, help="with --lambda url: where Task invokes go")
        p.add_argument("--concurrency", type=int, default=4, help="cargo-lambda instances per function")
        p.add_argument("--function-env", action="append", default=[], metavar="KEY=VALUE", help="extra env for the functions")
        p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait until ready (a cold build of the functions takes minutes)")
        p.add_argument("--resolvers", type=int, default=1, help="independent unbound caches in front of the DNS authority (default 1)")
        p.add_argument(
            "--warm" if name == "serve" else "--no-warm",
            dest="warm",
            action="store_true" if name == "serve" else "store_false",
            default=(name == "up"),
            help="invoke every function once before reporting ready (builds and starts them)"
            if name == "serve"
            else "do not invoke every function once before reporting ready",
        )
        if name == "up":
            p.add_argument("--foreground", action="store_true", help="stay attached; Ctrl-C stops everything")
        else:
            p.add_argument("--exit-with-parent", action="store_true")
    p = sub.add_parser("dig", help="ask the local resolver (or the authority) one DNS question")
    p.add_argument("--run-dir", type=Path, default=argparse.SUPPRESS)
    p.add_argument("name")
    p.add_argument("rdtype", nargs="?", default="A")
    p.add_argument("--authority", action="store_true", help="ask the DNS authority, not the caching resolver")
    p.add_argument("--tcp", action="store_true")
    for name in ("down", "status"):
        p = sub.add_parser(name)
        p.add_argument("--run-dir", type=Path, default=argparse.SUPPRESS)
        if name == "status":
            p.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    run_dir: Path = args.run_dir

    if args.cmd == "serve" or (args.cmd == "up" and args.foreground):
        from .server import serve

        run_dir.mkdir(parents=True, exist_ok=True)
        handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
        if args.cmd == "up":
            handlers.append(logging.FileHandler(run_dir / "localaws.log"))
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", handlers=handlers)
        code = serve(
            run_dir,
            lambda_mode=args.lambda_mode,
            lambda_url=args.lambda_url,
            concurrency=args.concurrency,
            exit_with_parent=getattr(args, "exit_with_parent", False),
            extra_env=_parse_env(args.function_env),
            ready_timeout=args.timeout,
            warm=args.warm,
            resolvers=args.resolvers,
        )
        # Children are stopped and files written by now. Exit at once: moto's
        # interpreter threads (a bake waiting for its token) and keep-alive
        # request threads are not daemons and would hold the process open.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    from .api import LocalAwsError, _pid_alive, read_endpoints, spawn_server, stop_pids, wait_ready

    if args.cmd == "dig":
        from .dns_server import query

        doc = read_endpoints(run_dir)
        if not doc or not _pid_alive(int(doc.get("pid", 0))) or "dns" not in doc:
            print(f"no local AWS running from {run_dir}; run `python -m localaws up`", file=sys.stderr)
            return 3
        server = doc["dns"]["authority" if args.authority else "resolver"]
        print(f";; server {server} ({'authority' if args.authority else 'resolver'})")
        print(query(args.name, server, args.rdtype, tcp=args.tcp).to_text())
        return 0

    if args.cmd == "up":
        existing = read_endpoints(run_dir)
        if existing and _pid_alive(int(existing.get("pid", 0))):
            print(f"local AWS already running: {existing['endpointUrl']} (pid {existing['pid']})")
            return 0
        log_path = run_dir / "localaws.log"
        proc = spawn_server(
            run_dir,
            args.lambda_mode,
            args.lambda_url,
            args.concurrency,
            False,
            _parse_env(args.function_env),
            log_path,
            warm=args.warm,
            timeout=args.timeout,
            resolvers=args.resolvers,
        )
        try:
            doc = wait_ready(proc, run_dir, args.timeout, log_path)
        except (LocalAwsError, KeyboardInterrupt) as e:
            stop_pids({"pid": proc.pid}, proc=proc)
            print(f"local AWS failed to start: {e}", file=sys.stderr)
            return 1
        lam = doc["lambda"]
        for w in lam.get("warmup") or []:
            print(f"  warmed {w['function']}: {w['seconds']} s")
        print(f"local AWS up: endpoint {doc['endpointUrl']}  lambda {lam.get('url') or '-'}  (pids {doc['pids']})")
        print(f"  export AWS_ENDPOINT_URL={doc['endpointUrl']} AWS_REGION={config.REGION} "
              f"AWS_ACCESS_KEY_ID={config.ACCESS_KEY_ID} AWS_SECRET_ACCESS_KEY={config.SECRET_ACCESS_KEY}")
        dns_doc = doc.get("dns") or {}
        print(f"  dns: resolver {dns_doc.get('resolver')} (unbound pid {dns_doc.get('resolverPid')}), "
              f"authority {dns_doc.get('authority')}   e.g. python -m localaws dig my-cname.ns-1")
        print(f"  endpoints: {run_dir / 'endpoints.json'}   logs: {run_dir}")
        return 0

    doc = read_endpoints(run_dir)
    if args.cmd == "down":
        if not doc:
            print("local AWS not running (no endpoints.json)")
            return 0
        stop_pids(doc)
        (run_dir / "endpoints.json").unlink(missing_ok=True)
        print(f"local AWS stopped (pids {doc.get('pids')})")
        return 0

    # status
    from .server import _http_answers

    alive = doc is not None and bool(doc) and _pid_alive(int(doc.get("pid", 0)))
    moto_ok = doc is not None and alive and _http_answers(doc["moto"]["host"], doc["moto"]["port"], "/_localaws/health")
    lam = (doc or {}).get("lambda") or {}
    lambda_ok = None
    if alive and lam.get("port"):
        lambda_ok = _http_answers("127.0.0.1", int(lam["port"]))
    status = {
        "running": alive,
        "motoAnswers": moto_ok,
        "lambdaAnswers": lambda_ok,
        "endpointUrl": (doc or {}).get("endpointUrl"),
        "lambdaUrl": lam.get("url"),
        "pids": (doc or {}).get("pids"),
    }
    if getattr(args, "json", False):
        print(json.dumps(status, indent=2))
    else:
        print(
            "local AWS "
            + (f"running: endpoint {status['endpointUrl']} ({'answers' if moto_ok else 'NOT answering'}), "
               f"lambda {status['lambdaUrl'] or '-'} ({'answers' if lambda_ok else 'n/a' if lambda_ok is None else 'NOT answering'}), pids {status['pids']}"
               if alive else "not running")
        )
    ok = alive and moto_ok and lambda_ok is not False
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
