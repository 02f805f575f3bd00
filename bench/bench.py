"""`make bench`: one table (Markdown, printed) and its JSON
(bench-results/bench.json) with

- init time of each release binary vs the same handler in Python + boto3,
- deployment zip size of each function,
- orchestration overhead of a 3-step canary with every wait 0,
- rollback reaction (alarm event delivered -> both weights back),
- cost per deployment (state transitions, Lambda invocations, AWS calls),
- what clients see (`clients`, bench/clients.py): share per step, time to
  safety, blast radius, failed requests, from the clients' request log,
- the fleet (`fleet`, bench/fleet.py): N deployments baking, one alarm
  fires: event -> weights back and the alarm path's AWS calls, through the
  bake registry and through the history scan; the gate's CloudWatch calls.

Figures are medians with min and max; targets are checked and printed, never
asserted (these machines are noisy). See bench/README.md."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import init_time  # noqa: E402
import size  # noqa: E402
from common import BENCH, FUNCTIONS, RELEASE_DIR, RESULTS_DIR, baseline_python, machine  # noqa: E402

SECTIONS = ("size", "init", "orchestration", "rollback", "cost", "clients", "fleet")


def release_binaries_present() -> bool:
    return all((RELEASE_DIR / f).exists() for f in FUNCTIONS)


def run(args: argparse.Namespace) -> dict[str, Any]:
    sections = set(args.sections.split(",")) if args.sections else set(SECTIONS)
    lambdas = [s for s in args.lambda_services.split(",") if s]
    doc: dict[str, Any] = {
        "startedAt": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "initReps": args.reps,
            "localReps": args.local_reps,
            "lambdaServices": lambdas,
            "sections": sorted(sections),
            "clientsProfile": args.clients_profile,
        },
        "skipped": {},
        "errors": {},
    }

    def step(name: str, fn: Any) -> None:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        started = time.time()
        try:
            doc[name] = fn()
        except Exception as e:  # noqa: BLE001 - one failed section must not hide the others
            doc["errors"][name] = f"{type(e).__name__}: {e}"
            traceback.print_exc()
        print(f"bench: {name} done in {time.time() - started:.0f} s", file=sys.stderr, flush=True)

    needs_release = sections & {"size", "init"} or ("release" in lambdas and sections & {"orchestration", "rollback", "cost"})
    if args.build and needs_release:
        step("build", size.build)
    have_release = release_binaries_present()
    if not have_release:
        why = f"release binaries missing in {RELEASE_DIR} (run without --no-build)"
        for s in sorted(sections & {"size", "init"}):
            doc["skipped"][s] = why
        if "release" in lambdas:
            if sections & {"orchestration", "rollback", "cost"}:
                doc["skipped"]["local-release"] = why
            lambdas = [s for s in lambdas if s != "release"]
    if "size" in sections and have_release:
        step("size", size.run)
    if "init" in sections and have_release:
        step("init", lambda: init_time.run(reps=args.reps, python=Path(args.python)))

    local_sections = sections & {"orchestration", "rollback", "cost"}
    if local_sections and lambdas:
        import local_runs

        rb_services = [f"rb{i}" for i in range(args.local_reps + 1)] if "rollback" in local_sections else []
        for service in lambdas:

            def one(service: str = service) -> dict[str, Any]:
                out: dict[str, Any] = {}
                with local_runs.local_aws(service, ["orch", *rb_services]) as (aws, w):
                    if "orchestration" in local_sections:
                        out["orchestration"] = local_runs.orchestration(aws, w, args.local_reps, "orch")
                    if "cost" in local_sections:
                        out["cost"] = local_runs.cost(aws, w, "orch")
                    if "rollback" in local_sections:
                        out["rollback"] = local_runs.rollback(aws, w, args.local_reps, rb_services)
                return out

            step(f"local-{service}", one)
    if "clients" in sections:
        import clients

        # Always the debug functions under cargo lambda watch (--lambda-services
        # does not apply): the section measures clients, not the functions.
        step("clients", lambda: clients.run(args.clients_profile, reps=args.clients_reps))
    if "fleet" in sections:
        import fleet

        # cargo lambda watch (debug builds), like the clients section.
        sizes = tuple(int(x) for x in args.fleet_sizes.split(",")) if args.fleet_sizes else None
        step("fleet", lambda: fleet.run(args.fleet_profile or ("smoke" if args.quick else "full"), sizes))
    doc["finishedAt"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return doc


# ------------------------------------------------------------------ table


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _stat(s: dict[str, Any] | None, digits: int = 1, scale: float = 1.0) -> tuple[str, str, str]:
    if not s or s.get("median") is None:
        return ("-", "-", "-")
    return tuple(_fmt(s[k] * scale, digits) for k in ("median", "min", "max"))  # type: ignore[return-value]


LAMBDA_LABEL = {"release": "release binaries", "cargo": "cargo lambda watch (debug builds)"}


def table(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = [
        f"ecs-dns-canary benchmark, {doc['startedAt']} (git {m.get('git')}{', uncommitted changes in the sources' if m.get('gitDirty') else ''})",
        f"machine: nproc {m['nproc']}, {m['cpu']}, {m['memoryGB']} GB RAM, {m['os']}, {m.get('rustc')}, Python {m['python']}",
        "",
        "| figure | subject | median | min | max | target | met |",
        "|---|---|---:|---:|---:|---|---|",
    ]

    def row(figure: str, subject: str, stats: tuple[str, str, str], target: str = "", met: Any = "") -> None:
        if isinstance(met, bool):
            met = "yes" if met else "**no**"
        lines.append(f"| {figure} | {subject} | {stats[0]} | {stats[1]} | {stats[2]} | {target} | {met} |")

    init = doc.get("init")
    if init:
        for r in init["rows"]:
            subject = f"{r['function']} (Rust, release)" if r["kind"] == "rust" else "set-weight (Python + boto3)"
            row(f"init time, ms (n={r['initMs']['n']})", subject, _stat(r["initMs"], 1))
        if init.get("pythonVsSlowestRust") is not None:
            row(
                "init ratio",
                f"Python median / slowest Rust median ({init['slowestRust']}); vs set-weight: {init['pythonVsSetWeight']}x",
                (f"{init['pythonVsSlowestRust']}x", "", ""),
                ">= 20x",
                init["targetMet"],
            )
        rss = [f"{r['function'].split(' ')[0] if r['kind'] == 'rust' else 'python'} {r['rssMBAtReady']['median']}" for r in init["rows"]]
        row("RSS at ready, MB", ", ".join(rss), ("", "", ""))
    sz = doc.get("size")
    if sz:
        for r in sz["rows"]:
            row(
                "zip size, MB",
                f"{r['function']} (binary {r['binaryBytes'] / 1e6:.2f} MB)",
                (f"{r['zipBytes'] / 1e6:.2f}", "", ""),
                "<= 4 MB",
                r["underLimit"],
            )
    for service in ("release", "cargo"):
        local = doc.get(f"local-{service}")
        if not local:
            continue
        label = LAMBDA_LABEL[service]
        o = local.get("orchestration")
        if o:
            row(
                f"orchestration, s (n={o['serverWallS']['n']})",
                f"3-step canary, every wait 0, StartExecution -> SUCCEEDED ({o['statesEntered']} states), {label}",
                _stat(o["serverWallS"], 2),
                "<= 2 s",
                o["targetMet"],
            )
        rb = local.get("rollback")
        if rb:
            row(
                f"rollback reaction, ms (n={rb['eventToWeightsBackMs']['n']})",
                f"alarm event delivered -> both weights back (bake 300 s), {label}",
                _stat(rb["eventToWeightsBackMs"], 0),
            )
            row(
                f"rollback: bake left, ms (n={rb['eventToBakeLeftMs']['n']})",
                f"alarm event delivered -> execution enters its rollback path, {label}",
                _stat(rb["eventToBakeLeftMs"], 0),
            )
    for service in ("release", "cargo"):
        c = (doc.get(f"local-{service}") or {}).get("cost")
        if not c:
            continue
        runs = c["runs"]
        bakes = " / ".join(f"{r['bakeSeconds']} s" for r in runs)

        def both(key: str, runs: list[dict[str, Any]] = runs) -> str:
            return " / ".join(_fmt(r[key]) for r in runs)

        eq = c["equalAcrossBakes"]
        label = LAMBDA_LABEL[service]
        row("cost: state transitions", f"3-step canary, bake {bakes} ({label})", (both("stateTransitions"), "", ""), "equal", eq)
        row("cost: Lambda invocations", f"bake {bakes}", (both("lambdaInvocations"), "", ""), "equal", eq)
        r0 = runs[0]
        calls = ", ".join(f"{k} {v}" for k, v in r0["awsCallsByService"].items() if k != "route53")
        row("cost: AWS calls (functions)", f"bake {bakes}; besides Route 53: {calls}", (both("awsCallsTotal"), "", ""), "equal", eq)
        r53 = ", ".join(f"{k} {v}" for k, v in r0["route53ByOperation"].items())
        row("cost: Route 53 calls", f"bake {bakes}: {r53}", (both("route53Calls"), "", ""), "equal", eq)
        price = r0["priceUSD"]
        row(
            "cost: Step Functions price",
            f"${c['pricePer1000Transitions']} per 1,000 transitions: ${price * 1000:.2f} per 1,000 deployments",
            (f"${price:.5f}", "", ""),
        )
        break  # the counts do not depend on the Lambda service; both are in the JSON
    if doc.get("clients"):
        import clients

        c = doc["clients"]
        lines.append(f"| clients section | profile {c['profile']}, {c['lambdaService']}, {c['wallS']:.0f} s wall | | | | | |")
        for figure, subject, stats, target, met in clients.table_rows(c):
            row(figure, subject, stats, target, met)
    if doc.get("fleet"):
        import fleet

        f = doc["fleet"]
        lines.append(f"| fleet section | N = {', '.join(map(str, f['sizes']))}, {f['lambdaService']}, API limits on, {f['wallS']:.0f} s wall | | | | | |")
        for figure, subject, stats, target, met in fleet.table_rows(f):
            row(figure, subject, stats, target, met)
        for e in f.get("errors", []):
            lines.append(f"| **error** | fleet: {e} | | | | | |")
    for name, why in doc.get("skipped", {}).items():
        lines.append(f"| skipped | {name}: {why} | | | | | |")
    for name, err in doc.get("errors", {}).items():
        lines.append(f"| **error** | {name}: {err} | | | | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=20, help="init-time runs per function (default 20)")
    p.add_argument("--local-reps", type=int, default=5, help="measured deployments / rollbacks per Lambda service (default 5)")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {','.join(SECTIONS)}")
    p.add_argument("--lambda-services", default="release,cargo", help="which local Lambda service(s) run the functions: release,cargo")
    p.add_argument("--no-build", dest="build", action="store_false", help="do not run cargo build --release (sections that need it are skipped when binaries are absent)")
    p.add_argument("--python", default=str(baseline_python()), help="interpreter for the Python + boto3 baseline (default: bench/.venv from bench/setup.sh)")
    p.add_argument("--out", default=str(RESULTS_DIR / "bench.json"))
    p.add_argument("--save", action="store_true", help="also keep a dated copy, bench-results/<date>.json (ignored by git)")
    p.add_argument("--quick", action="store_true", help="1 repetition everywhere (smoke test)")
    p.add_argument("--clients-profile", default=None, choices=["full", "quick", "smoke"], help="clients section: full (3 repetitions, <= 30 min), quick (1), smoke (the test's: < 2 min)")
    p.add_argument("--clients-reps", type=int, default=None, help="clients section: repetitions (default: the profile's)")
    p.add_argument("--fleet-profile", default=None, choices=["full", "smoke"], help="fleet section: full (N = 20, 100, 200) or smoke (N = 3); default full (smoke with --quick)")
    p.add_argument("--fleet-sizes", default=None, help="fleet section: comma list of N, overriding the profile (e.g. 20,100)")
    args = p.parse_args(argv)
    if args.quick:
        args.reps, args.local_reps = 1, 1
    if args.clients_profile is None:
        args.clients_profile = "quick" if args.quick else "full"

    doc = run(args)
    text = table(doc)
    doc["table"] = text
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    if args.save:
        saved = RESULTS_DIR / f"{doc['startedAt'][:10]}.json"
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(doc, indent=2, default=str) + "\n")
        print(f"bench: saved {saved.relative_to(BENCH.parent)}", file=sys.stderr)
    print(text)
    print(f"\nJSON: {out}", file=sys.stderr)
    return 1 if doc["errors"] or (doc.get("clients") or {}).get("errors") or (doc.get("fleet") or {}).get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
