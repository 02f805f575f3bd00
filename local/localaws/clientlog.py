"""Reading the clients' request log (JSONL written by `localaws.clients`):
the figures issue 11 asks for, a chart and a live line for the terminal.

Every function takes the records (dicts with the fields of
`clients.RECORD_FIELDS`) and states its definition in its docstring. Times
are epoch seconds; a request's time is its start `t` unless said otherwise.
A request *has a version* when it got an HTTP response (`status` not null)
that named one.

CLI: `python -m localaws.clientlog summary LOG`,
`python -m localaws.clientlog chart LOG OUT.png --event T:LABEL ...`,
`python -m localaws.clientlog live LOG` (follow a growing log).
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

Record = dict[str, Any]

NO_VERSION = "-"


def load(path: str | Path) -> list[Record]:
    """The records of a log file, in file order. Blank lines are skipped; a
    line that is not a JSON object raises ValueError naming the line (a
    truncated last line, from a writer that was killed, is skipped)."""
    out: list[Record] = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            if i == len(lines):
                break
            raise ValueError(f"{path}:{i}: not a JSON line") from None
        if not isinstance(rec, dict):
            raise ValueError(f"{path}:{i}: not a JSON object")
        out.append(rec)
    return out


def _answered(r: Record) -> bool:
    return r.get("status") is not None and r.get("version") is not None


def _is_5xx(r: Record) -> bool:
    return r.get("status") is not None and r["status"] >= 500


def shares_over_time(records: Iterable[Record], bucket: float = 1.0, origin: float | None = None) -> list[dict[str, Any]]:
    """Each version's share of the requests that started in each time bucket.

    Buckets are [origin + k·bucket, origin + (k+1)·bucket) over the requests'
    start times; `origin` defaults to the first request's start. Only
    requests that have a version count (a connection error reached no
    version). Returns, for every bucket with at least one such request, in
    time order: `{"start", "n", "shares": {version: count_v / n},
    "counts": {version: count_v}}`.
    """
    recs = [r for r in records if _answered(r)]
    if not recs:
        return []
    t0 = min(r["t"] for r in recs) if origin is None else origin
    groups: dict[int, Counter[str]] = defaultdict(Counter)
    for r in recs:
        groups[math.floor((r["t"] - t0) / bucket)][r["version"]] += 1
    out = []
    for k in sorted(groups):
        c = groups[k]
        n = sum(c.values())
        out.append({"start": t0 + k * bucket, "n": n, "counts": dict(c), "shares": {v: c[v] / n for v in sorted(c)}})
    return out


def share_in_interval(
    records: Iterable[Record],
    version: str,
    start: float,
    end: float,
    expected: float | None = None,
    z: float = 1.96,
    draws: int | None = None,
) -> dict[str, Any]:
    """The share of `version` among the requests that started in [start, end)
    and have a version, with the binomial margin for that many requests.

    share = k / n (k: requests answered by `version`; n: requests answered
    by any version). margin = z·sqrt(p·(1−p)/n) with p = `expected` when
    given (the step's weight, as a fraction), else the observed share;
    z = 1.96 is a 95 % interval. `within` (only with `expected`) is
    |share − expected| ≤ margin. The margin assumes n independent draws.
    With one caching resolver in front they are not: every client gets the
    resolver's cached choice for a whole TTL, so the independent draws are
    the cache fills, about (end − start) / TTL; pass that as `draws` and the
    margin uses it instead of n (measured through unbound, TTL 1 s, 50 %
    weights, 8 clients, 10 s: 1578 requests, 16 queries at the authority,
    share 40.5 %: outside the ±2.5-point margin of n requests, inside the
    ±31-point margin of 10 draws). n = 0 gives share None.
    """
    n = k = 0
    for r in records:
        if start <= r["t"] < end and _answered(r):
            n += 1
            k += r["version"] == version
    share = k / n if n else None
    p = expected if expected is not None else share
    m = draws if draws is not None else n
    margin = z * math.sqrt(p * (1 - p) / m) if n and m and p is not None else None
    out: dict[str, Any] = {"version": version, "n": n, "k": k, "share": share, "margin": margin, "draws": m}
    if expected is not None:
        out["expected"] = expected
        out["within"] = share is not None and margin is not None and abs(share - expected) <= margin
    return out


def time_to_safety(
    records: Iterable[Record], instant: float, safe_versions: Iterable[str], threshold: float = 0.99, window: float = 1.0
) -> float | None:
    """Seconds from `instant` (e.g. the alarm's state change) until the new
    requests are safe and stay safe.

    Consider the requests that started at or after `instant` and have a
    version, by start time. For each such request i, its window is the
    requests starting in [t_i, t_i + window); the window is safe when at
    least `threshold` of them were answered by one of `safe_versions` (the
    old version). The time to safety is t_s − instant, where s is the first
    request such that the window of s and of every later request are safe.
    None when the last window is unsafe (never safe within the log) or no
    request started after `instant`. A clean switch at time T (all new
    before, all old from T) gives T − instant exactly.
    """
    safe = set(safe_versions)
    recs = sorted((r for r in records if r["t"] >= instant and _answered(r)), key=lambda r: r["t"])
    if not recs:
        return None
    ts = [r["t"] for r in recs]
    ok_prefix = [0]
    for r in recs:
        ok_prefix.append(ok_prefix[-1] + (r["version"] in safe))
    last_unsafe = -1
    for i, t in enumerate(ts):
        j = bisect.bisect_left(ts, t + window)
        n = j - i
        if (ok_prefix[j] - ok_prefix[i]) < threshold * n:
            last_unsafe = i
    if last_unsafe == len(recs) - 1:
        return None
    return ts[last_unsafe + 1] - instant


def blast_radius(records: Iterable[Record], version: str, until: float) -> dict[str, Any]:
    """Bad responses served by `version` from its first request to `until`.

    first = the start time of the first request answered by `version`;
    bad = requests answered by `version` with status ≥ 500 that started in
    [first, until]; served = all requests it answered in that interval.
    Returns `{"version", "first", "until", "bad", "served"}` (first None and
    zeros when the version never answered).
    """
    mine = [r for r in records if _answered(r) and r["version"] == version]
    if not mine:
        return {"version": version, "first": None, "until": until, "bad": 0, "served": 0}
    first = min(r["t"] for r in mine)
    inside = [r for r in mine if first <= r["t"] <= until]
    return {"version": version, "first": first, "until": until, "bad": sum(_is_5xx(r) for r in inside), "served": len(inside)}


def failed_requests(records: Iterable[Record], start: float, end: float, bad_versions: Iterable[str] = ()) -> list[Record]:
    """The requests started in [start, end) that failed through no fault of
    the version that was meant to fail: `error` not null (DNS, refused,
    reset, timeout, bad HTTP answer), or a status ≥ 500 from a version not
    in `bad_versions`. A 5xx from a version marked bad (the canary pushed
    bad on purpose) is that version's behaviour, counted by blast_radius."""
    bad = set(bad_versions)
    return [
        r
        for r in records
        if start <= r["t"] < end and (r.get("error") is not None or (_is_5xx(r) and r.get("version") not in bad))
    ]


def requests_after_stop(records: Iterable[Record], stops: Mapping[str, float]) -> list[Record]:
    """Requests that reached a task after it was stopped: the response names
    task X (`task`), X is in `stops` (task → stop instant) and the request
    started after that instant (t > stop). A request that started before
    the stop and was finished during the graceful shutdown is not one."""
    return [r for r in records if r.get("task") in stops and r["t"] > stops[r["task"]]]


def summary(records: Sequence[Record]) -> dict[str, Any]:
    """Totals of a log: time span (first start to last end), requests and
    rate, and per version (`-` = no response) requests, 5xx, errors by
    kind, latency p50/p99 (nearest rank) and mean; connections reused."""
    if not records:
        return {"requests": 0}
    t0 = min(r["t"] for r in records)
    t1 = max(r.get("tEnd") or r["t"] for r in records)
    per: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        per[r["version"] if _answered(r) else NO_VERSION].append(r)
    versions = {}
    for v, rs in sorted(per.items()):
        lat = sorted(r["latencyMs"] for r in rs if r.get("latencyMs") is not None)
        versions[v] = {
            "requests": len(rs),
            "errors5xx": sum(_is_5xx(r) for r in rs),
            "errors": dict(Counter(r["error"] for r in rs if r.get("error"))),
            "latencyMsP50": _rank(lat, 0.5),
            "latencyMsP99": _rank(lat, 0.99),
            "latencyMsMean": round(sum(lat) / len(lat), 3) if lat else None,
            "first": min(r["t"] for r in rs),
            "last": max(r["t"] for r in rs),
        }
    span = t1 - t0
    return {
        "requests": len(records),
        "start": t0,
        "end": t1,
        "seconds": round(span, 3),
        "rps": round(len(records) / span, 1) if span > 0 else None,
        "clients": len({r["client"] for r in records}),
        "modes": sorted({r["mode"] for r in records}),
        "reused": sum(bool(r.get("reused")) for r in records),
        "versions": versions,
    }


def _rank(sorted_values: Sequence[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def live_line(records: Iterable[Record], now: float, window: float = 1.0) -> str:
    """One line for a terminal: per version, the requests that ended in
    (now − window, now] as a rate, and among them 5xx and other errors
    (`-` collects the requests without a response)."""
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in records:
        end = r.get("tEnd") or r["t"]
        if now - window < end <= now:
            c = per[r["version"] if _answered(r) else NO_VERSION]
            c[0] += 1
            c[1] += _is_5xx(r)
            c[2] += r.get("error") is not None and not _is_5xx(r)
    if not per:
        return f"{time.strftime('%H:%M:%S', time.gmtime(now))} no requests"
    parts = [f"{v}: {c[0] / window:6.1f} rps {c[1]:3d} 5xx {c[2]:3d} err" for v, c in sorted(per.items())]
    return f"{time.strftime('%H:%M:%S', time.gmtime(now))}  " + " | ".join(parts)


def chart(
    records: Sequence[Record],
    out: str | Path,
    events: Sequence[tuple[float, str]] = (),
    bucket: float = 1.0,
    title: str = "Client requests by version",
) -> Path:
    """A PNG: top, each version's share of client requests per bucket
    (stacked, from shares_over_time); bottom, requests/s and 5xx/s per
    version. Vertical lines mark `events` (epoch time, label) on both; the
    x axis is seconds since the first request."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = shares_over_time(records, bucket)
    if not rows:
        raise ValueError("no request with a version in the log: nothing to chart")
    t0 = min(r["t"] for r in records)
    versions = sorted({v for row in rows for v in row["counts"]})
    xs = [row["start"] - t0 + bucket / 2 for row in rows]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    colors = plt.get_cmap("tab10")
    ys = [[100 * row["shares"].get(v, 0.0) for row in rows] for v in versions]
    ax1.stackplot(xs, ys, labels=versions, colors=[colors(i) for i in range(len(versions))], alpha=0.85, step="mid")
    ax1.set_ylabel("share of requests (%)")
    ax1.set_ylim(0, 100)
    ax1.set_title(title)
    bad5: dict[str, Counter[int]] = defaultdict(Counter)
    for r in records:
        if _answered(r) and _is_5xx(r):
            bad5[r["version"]][math.floor((r["t"] - t0) / bucket)] += 1
    for i, v in enumerate(versions):
        ax2.plot(xs, [row["counts"].get(v, 0) / bucket for row in rows], color=colors(i), label=f"{v} requests/s")
        if bad5.get(v):
            ks = sorted(bad5[v])
            ax2.plot([k * bucket + bucket / 2 for k in ks], [bad5[v][k] / bucket for k in ks], "x", color=colors(i), label=f"{v} 5xx/s")
    errs = Counter(math.floor((r["t"] - t0) / bucket) for r in records if not _answered(r))
    if errs:
        ks = sorted(errs)
        ax2.plot([k * bucket + bucket / 2 for k in ks], [errs[k] / bucket for k in ks], "v", color="black", label="no response/s")
    ax2.set_ylabel("per second")
    ax2.set_xlabel("seconds since the first request")
    ax2.set_ylim(bottom=0)
    for n, (et, label) in enumerate(events):
        x = et - t0
        for ax in (ax1, ax2):
            ax.axvline(x, color="black", linestyle="--", linewidth=1)
        ax1.annotate(label, (x, 100), xytext=(3, -12 - 11 * (n % 4)), textcoords="offset points", fontsize=8, va="top",
                     bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.8})
    ax1.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), title="version")
    ax2.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _parse_event(text: str) -> tuple[float, str]:
    t, sep, label = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"event is T:LABEL (epoch seconds), got {text!r}")
    return float(t), label


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m localaws.clientlog", description="Figures and charts from the clients' request log.")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("summary", help="totals per version (JSON)")
    s.add_argument("log")
    c = sub.add_parser("chart", help="share of requests per version over time (PNG)")
    c.add_argument("log")
    c.add_argument("out")
    c.add_argument("--event", action="append", type=_parse_event, default=[], help="T:LABEL, T in epoch seconds (repeatable)")
    c.add_argument("--bucket", type=float, default=1.0)
    c.add_argument("--title", default="Client requests by version")
    f = sub.add_parser("live", help="follow a growing log, one line per second")
    f.add_argument("log")
    f.add_argument("--duration", type=float, default=3600.0, help="stop after this many seconds")
    args = p.parse_args(argv)
    if args.cmd == "summary":
        print(json.dumps(summary(load(args.log)), indent=2))
    elif args.cmd == "chart":
        print(chart(load(args.log), args.out, events=args.event, bucket=args.bucket, title=args.title))
    else:
        _follow(Path(args.log), args.duration)
    return 0


def _follow(path: Path, duration: float) -> None:
    end = time.monotonic() + duration
    pos = 0
    recent: list[Record] = []
    buf = ""
    while time.monotonic() < end:
        if path.exists():
            with path.open(encoding="utf-8") as fh:
                fh.seek(pos)
                buf += fh.read()
                pos = fh.tell()
            *lines, buf = buf.split("\n")
            recent += [json.loads(x) for x in lines if x.strip()]
        now = time.time()
        recent = [r for r in recent if (r.get("tEnd") or r["t"]) > now - 2]
        print(live_line(recent, now), flush=True)
        time.sleep(1.0)


if __name__ == "__main__":
    sys.exit(main())
