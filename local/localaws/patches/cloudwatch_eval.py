"""CloudWatch alarms that evaluate: metric alarms from PutMetricData, and
composite alarms from their rule.

moto 5.2.5 stores alarms and metric data but never evaluates an alarm, has
no PutCompositeAlarm, and starts a new alarm in OK. This module adds:

**Metric alarms** (Amazon CloudWatch User Guide, "Using Amazon CloudWatch
alarms": "Evaluating an alarm", "Configuring how CloudWatch alarms treat
missing data", "High-resolution alarms", "Percentile-based alarms and low
data samples"). A thread evaluates every metric alarm every `tick_seconds`
(10 s, as CloudWatch evaluates 10/20/30 s alarms; AWS evaluates alarms of 60 s
and more once a minute: here every tick, which gives the same state unless
late data arrive). For each alarm:

- the metric is the alarm's Namespace + MetricName + exactly its set of
  Dimensions (a metric is identified by all of its dimensions), Unit when
  the alarm names one; data come from moto's own store
  (`CloudWatchBackend.metric_data`: `MetricDatum` per value, Values/Counts
  expanded, `MetricAggregatedDatum` per StatisticValues);
- periods are aligned on multiples of Period since the epoch, as CloudWatch
  aggregates; **the metric data delay**: only complete periods are
  evaluated, the newest being the last one that ended at least
  `delay_seconds` before the evaluation (default 0: the period that just
  ended; CloudWatch "evaluates the last complete periods");
- statistic per period: Sum, Average, Minimum, Maximum, SampleCount, or an
  ExtendedStatistic `pNN` / `pNN.N` (nearest rank over the raw values; data
  put as StatisticValues have no percentiles and count as missing for a
  percentile alarm); EvaluateLowSampleCountPercentile `ignore` keeps the
  state while a period has fewer than 10/(1-p) samples (p >= 0.5) or 10/p;
- the evaluation range is EvaluationPeriods + 2 periods (the guide's tables
  retrieve 5 data points for 3 evaluation periods; it says the exact number
  depends on period and resolution), then, with N = EvaluationPeriods and
  M = DatapointsToAlarm (default N), as the guide's "How alarm state is
  evaluated when data is missing" says and its two tables show:
  * N or more real data points: the most recent N decide (M breaching ->
    ALARM, else OK); TreatMissingData is not used;
  * none: `missing` -> INSUFFICIENT_DATA, `ignore` -> state kept,
    `breaching` -> ALARM, `notBreaching` -> OK;
  * some (fewer than N): `breaching` / `notBreaching` fill the N - k missing
    points with breaching / good ones; `missing` and `ignore` evaluate the
    real points only: M breaching -> ALARM, a good one among them -> OK,
    otherwise (only breaching points, fewer than M) `ignore` keeps the
    state and `missing` goes INSUFFICIENT_DATA, except when the oldest
    period of the range holds a breaching point and none is good, which the
    guide's table makes ALARM ("X - - - -");
- static-threshold operators only: GreaterThanOrEqualToThreshold,
  GreaterThanThreshold, LessThanThreshold, LessThanOrEqualToThreshold. The
  anomaly-band operators need a `ThresholdMetricId` (an
  ANOMALY_DETECTION_BAND expression), which the local CloudWatch does not
  compute: PutMetricAlarm refuses them with `ValidationError`. Alarms on
  metric math (`Metrics`) are stored but not evaluated.

A transition goes through moto's `Alarm.update_state`, so it writes alarm
history and sends the alarm state change event exactly as SetAlarmState
does (`cloudwatch_history`, `alarm_events`); the reason and reason data
have AWS's shape ("Threshold Crossed: 1 out of the last 1 datapoints
[5.0 (01/12/26 23:10:00)] was greater than the threshold (1.0) (minimum 1
datapoint for OK -> ALARM transition).", reason data JSON with `version`,
`queryDate`, `startDate`, `statistic`, `period`, `recentDatapoints`,
`threshold`). SetAlarmState keeps working; as on AWS the next evaluation
may change the state again ("This temporary state change lasts only until
the next alarm comparison occurs"). New alarms start INSUFFICIENT_DATA
(`cloudwatch_history`), as PutMetricAlarm's reference says.

**Composite alarms** (CloudWatch API Reference, PutCompositeAlarm): created
with AlarmRule of ALARM(x), OK(x), INSUFFICIENT_DATA(x) (x an alarm name,
quoted or not, or its ARN), TRUE, FALSE, AND, OR, NOT and parentheses (NOT
binds tightest, then AND, then OR). Every referenced alarm must exist
(`ValidationError` otherwise). A new composite alarm starts INSUFFICIENT_DATA
and is evaluated at once ("this initial time after creation is the only time
that the alarm can be in INSUFFICIENT_DATA state"); afterwards it is
re-evaluated whenever one of its children changes state: rule TRUE -> ALARM,
FALSE -> OK. The event and history carry AWS's composite shape: reason
"<child ARN> transitioned to ALARM at <date>", reason data
`{"triggeringAlarms": [{"arn", "state": {"value", "timestamp"}}]}`,
configuration `{"alarmRule", "description"}`. SetAlarmState works on them
(the state holds until a child changes, as the SetAlarmState reference
says). DeleteAlarms refuses an alarm a remaining composite alarm depends on. DescribeAlarms / DescribeAlarmHistory filter by AlarmTypes
(`cloudwatch_history`).

Settings (control API `/_localaws/alarm-evaluation`, Python
`aws.alarm_evaluation(...)`, `aws.evaluate_alarms(at=...)`): `enabled`
(default off, see local/README.md: tests that drive states with
SetAlarmState would otherwise see them reverted), `tickSeconds` (10),
`delaySeconds` (0). `LOCALAWS_ALARM_EVALUATION=1` (and
`LOCALAWS_ALARM_TICK`, `LOCALAWS_ALARM_DELAY`) set the defaults at start;
`reset()` returns to them."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from moto.cloudwatch import models as cw_models
from moto.cloudwatch import responses as cw_responses
from moto.cloudwatch.exceptions import InvalidParameterValue, ValidationError
from moto.core.responses import ActionResult, EmptyResult

from ..state import MOTO_LOCK
from .cloudwatch_history import STATE_CHANGE_LISTENERS, add_history, aws_time, utc

LOG = logging.getLogger("localaws.alarm_eval")

STATIC_OPERATORS = {
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}
BAND_OPERATORS = ("LessThanLowerOrGreaterThanUpperThreshold", "LessThanLowerThreshold", "GreaterThanUpperThreshold")
STATISTICS = ("Sum", "Average", "Minimum", "Maximum", "SampleCount")
PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d{1,10})?|100)$")
TREATMENTS = ("missing", "notBreaching", "breaching", "ignore")
# Every loop here is bounded: at most this many periods are read per alarm.
MAX_RANGE_PERIODS = 1442


# ------------------------------------------------------------------ settings


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass
class EvalSettings:
    enabled: bool
    tick_seconds: float
    delay_seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "tickSeconds": self.tick_seconds, "delaySeconds": self.delay_seconds}


def default_settings() -> EvalSettings:
    return EvalSettings(
        enabled=os.environ.get("LOCALAWS_ALARM_EVALUATION", "0") not in ("0", "", "false", "off"),
        tick_seconds=_env_float("LOCALAWS_ALARM_TICK", 10.0),
        delay_seconds=_env_float("LOCALAWS_ALARM_DELAY", 0.0),
    )


class Evaluator:
    """The evaluation thread and its settings."""

    def __init__(self) -> None:
        self.settings = default_settings()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0
        self.last_tick: float | None = None
        self.transitions: int = 0

    def configure(self, enabled: bool | None = None, tick_seconds: float | None = None, delay_seconds: float | None = None) -> dict[str, Any]:
        with self._lock:
            if enabled is not None:
                self.settings.enabled = bool(enabled)
            if tick_seconds is not None:
                if not 0.05 <= float(tick_seconds) <= 3600:
                    raise ValueError("tickSeconds must be between 0.05 and 3600")
                self.settings.tick_seconds = float(tick_seconds)
            if delay_seconds is not None:
                if not 0 <= float(delay_seconds) <= 3600:
                    raise ValueError("delaySeconds must be between 0 and 3600")
                self.settings.delay_seconds = float(delay_seconds)
        if enabled is not None or tick_seconds is not None:
            self._wake.set()
        return self.status()

    def reset(self) -> None:
        with self._lock:
            self.settings = default_settings()
        with MOTO_LOCK:
            _INDEXES.clear()  # moto's reset replaced the backends and their data
        self._wake.set()

    def status(self) -> dict[str, Any]:
        with self._lock:
            doc = self.settings.to_json()
        doc.update({"ticks": self.ticks, "lastTick": self.last_tick, "transitionCount": self.transitions})
        return doc

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="alarm-evaluator", daemon=True)
            self._thread.start()

    def poke(self) -> None:
        """Evaluate soon (a new alarm is evaluated right after creation)."""
        self._wake.set()

    def _run(self) -> None:
        next_at = 0.0
        while True:
            with self._lock:
                tick, enabled = self.settings.tick_seconds, self.settings.enabled
            if not enabled:
                self._wake.wait(3600.0)
                self._wake.clear()
                next_at = 0.0
                continue
            now = time.time()
            next_at = min(next_at, now + tick)  # a shorter tick applies at once
            if now < next_at and not self._wake.wait(next_at - now):
                continue  # the tick is due: the next pass evaluates
            self._wake.clear()
            now = time.time()
            if now >= next_at:
                next_at = now + tick
            try:
                self.evaluate_all(now)
            except Exception:  # noqa: BLE001 - the thread must live on
                LOG.exception("alarm evaluation failed")

    def evaluate_all(self, now: float | None = None) -> list[dict[str, Any]]:
        """One evaluation of every metric alarm at `now` (epoch seconds,
        default the wall clock). Returns the transitions it made."""
        at = time.time() if now is None else float(now)
        with self._lock:
            delay = self.settings.delay_seconds
        changes: list[dict[str, Any]] = []
        with MOTO_LOCK:
            for backend in _backends():
                for alarm in list(backend.alarms.values()):
                    if getattr(alarm, "rule", None):
                        continue
                    change = evaluate_metric_alarm(backend, alarm, at, delay)
                    if change is not None:
                        changes.append(change)
        self.ticks += 1
        self.last_tick = at
        self.transitions += len(changes)
        return changes


EVALUATOR = Evaluator()


def _backends() -> list[Any]:
    out = []
    for _account, regions in list(cw_models.cloudwatch_backends.items()):
        for _region, backend in list(regions.items()):
            out.append(backend)
    return out


# ------------------------------------------------------------------ metric alarms


def _epoch(dt: datetime) -> float:
    return utc(dt).timestamp()


def _dims(dimensions: list[Any]) -> frozenset[tuple[str, str]]:
    return frozenset((str(d.name), str(d.value)) for d in dimensions or [])


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _low_samples(count: float, p: float) -> bool:
    q = p / 100.0
    if q >= 0.5:
        return q < 1.0 and count < 10.0 / (1.0 - q)
    return q > 0 and count < 10.0 / q


@dataclass
class Datapoint:
    start: float
    value: float
    samples: float
    low_samples: bool = False


def period_value(data: list[Any], statistic: str | None, extended: str | None) -> tuple[float, float, bool] | None:
    """(value, sample count, low sample count) of one period, or None when
    the period has no data for this statistic."""
    singles = [float(d.value) for d in data if isinstance(d, cw_models.MetricDatum)]
    aggs = [d for d in data if isinstance(d, cw_models.MetricAggregatedDatum)]
    count = len(singles) + sum(float(a.sample_count) for a in aggs)
    if extended:
        m = PERCENTILE.match(extended)
        if not m or not singles:
            return None
        p = float(m.group(1))
        return _percentile(singles, p), float(len(singles)), _low_samples(len(singles), p)
    if not singles and not aggs:
        return None
    total = sum(singles) + sum(float(a.sum) for a in aggs)
    if statistic == "Sum":
        return total, count, False
    if statistic == "SampleCount":
        return count, count, False
    if statistic == "Average":
        return (total / count if count else 0.0), count, False
    if statistic == "Minimum":
        return min(singles + [float(a.min) for a in aggs]), count, False
    if statistic == "Maximum":
        return max(singles + [float(a.max) for a in aggs]), count, False
    return None


class MetricIndex:
    """moto's `metric_data` (an append-only list per backend) indexed by
    metric identity (namespace, name, exact dimension set), so a tick reads
    only the alarm's own series. New data are indexed incrementally; a
    replaced or shortened list (moto reset) is indexed again."""

    def __init__(self) -> None:
        self.source_id = 0
        self.seen = 0
        self.series: dict[tuple[str, str, frozenset[tuple[str, str]]], list[tuple[float, Any]]] = {}

    def update(self, data: list[Any]) -> None:
        if id(data) != self.source_id or len(data) < self.seen:
            self.source_id, self.seen, self.series = id(data), 0, {}
        for d in data[self.seen :]:
            key = (d.namespace, d.name, _dims(d.dimensions))
            self.series.setdefault(key, []).append((_epoch(d.timestamp), d))
        self.seen = len(data)


_INDEXES: dict[int, MetricIndex] = {}


def _index(backend: Any) -> MetricIndex:
    idx = _INDEXES.get(id(backend))
    if idx is None:
        idx = _INDEXES[id(backend)] = MetricIndex()
    idx.update(backend.metric_data)
    return idx


def datapoints(backend: Any, alarm: Any, newest_end: float, periods: int) -> list[Datapoint]:
    """The alarm's data points over `periods` periods ending at `newest_end`,
    oldest first; periods without data are absent."""
    period = int(alarm.period)
    start = newest_end - periods * period
    series = _index(backend).series.get((alarm.namespace, alarm.metric_name, _dims(alarm.dimensions)), [])
    buckets: dict[int, list[Any]] = {}
    for ts, d in series:
        if not start <= ts < newest_end:
            continue
        if alarm.unit and d.unit != alarm.unit:
            continue
        buckets.setdefault(int((ts - start) // period), []).append(d)
    out = []
    for i in sorted(buckets):
        got = period_value(buckets[i], alarm.statistic, alarm.extended_statistic)
        if got is not None:
            out.append(Datapoint(start + i * period, got[0], got[1], got[2]))
    return out


def _fmt_value(v: float) -> str:
    return repr(float(v))


def _fmt_time(epoch: float) -> str:
    return time.strftime("%d/%m/%y %H:%M:%S", time.gmtime(epoch))


def decide(
    points: list[tuple[float, bool]],
    range_starts: list[float],
    n: int,
    m: int,
    treatment: str,
) -> tuple[str | None, list[int]]:
    """The state the guide's rules give. `points`: (period start, breaching)
    of real data points, oldest first; `range_starts`: every period start of
    the evaluation range. Returns (state or None to keep the current one,
    indexes of the points evaluated)."""
    k = len(points)
    if k >= n:
        chosen = list(range(k - n, k))
        breaching = sum(1 for i in chosen if points[i][1])
        return ("ALARM" if breaching >= m else "OK"), chosen
    if k == 0:
        return {"missing": "INSUFFICIENT_DATA", "ignore": None, "breaching": "ALARM", "notBreaching": "OK"}[treatment], []
    chosen = list(range(k))
    breaching = sum(1 for _, b in points if b)
    if treatment == "breaching":
        return ("ALARM" if breaching + (n - k) >= m else "OK"), chosen
    if treatment == "notBreaching":
        return ("ALARM" if breaching >= m else "OK"), chosen
    if breaching >= m:
        return "ALARM", chosen
    if breaching < k:
        return "OK", chosen
    if treatment == "ignore":
        return None, chosen
    if points[0][0] == range_starts[0]:
        return "ALARM", chosen
    return "INSUFFICIENT_DATA", chosen


def evaluate_metric_alarm(backend: Any, alarm: Any, now: float, delay: float) -> dict[str, Any] | None:
    if not alarm.metric_name or alarm.period is None or alarm.evaluation_periods is None:
        return None  # metric math alarms are not evaluated
    op = STATIC_OPERATORS.get(alarm.comparison_operator or "")
    if op is None:
        return None
    if alarm.extended_statistic and not PERCENTILE.match(alarm.extended_statistic):
        return None  # trimmed means and the like are stored, not evaluated
    period = int(alarm.period)
    n = int(alarm.evaluation_periods)
    m = int(alarm.datapoints_to_alarm or n)
    treatment = alarm.treat_missing_data if alarm.treat_missing_data in TREATMENTS else "missing"
    threshold = float(alarm.threshold)
    newest_end = math.floor((now - delay) / period) * period
    range_periods = min(n + 2, MAX_RANGE_PERIODS)
    first_start = newest_end - range_periods * period
    range_starts: list[float] = [first_start + i * period for i in range(range_periods)]
    real = datapoints(backend, alarm, newest_end, range_periods)
    if alarm.extended_statistic and alarm.evaluate_low_sample_count_percentile == "ignore" and any(p.low_samples for p in real):
        return None
    compare, words = op
    points = [(p.start, bool(compare(p.value, threshold))) for p in real]
    new_state, chosen = decide(points, range_starts, n, m, treatment)
    if new_state is None or new_state == alarm.state_value:
        return None
    old_state = alarm.state_value
    evaluated = [real[i] for i in chosen]
    stat_name = alarm.statistic or alarm.extended_statistic
    query_date = aws_time(datetime.fromtimestamp(now, tz=timezone.utc))
    if new_state == "INSUFFICIENT_DATA":
        missing = n
        reason = f"Insufficient Data: {missing} datapoint{'s were' if missing != 1 else ' was'} unknown."
    else:
        shown = ", ".join(f"{_fmt_value(p.value)} ({_fmt_time(p.start)})" for p in reversed(evaluated))
        filled = max(0, n - len(evaluated))
        if new_state == "ALARM":
            count = sum(1 for i in chosen if points[i][1]) + (filled if treatment == "breaching" else 0)
        else:
            count = sum(1 for i in chosen if not points[i][1]) + (filled if treatment == "notBreaching" else 0)
        verb = "was" if new_state == "ALARM" else "was not"
        reason = (
            f"Threshold Crossed: {count} out of the last {n} datapoints [{shown}] {verb} {words} "
            f"the threshold ({_fmt_value(threshold)}) (minimum {m} datapoint{'s' if m != 1 else ''} for "
            f"{old_state} -> {new_state} transition)."
        )
        if not evaluated:
            reason = f"Threshold Crossed: no datapoints were received for {n} period{'s' if n != 1 else ''} and {n} missing datapoint{'s were' if n != 1 else ' was'} treated as [{treatment_word(treatment)}]."
    reason_data: dict[str, Any] = {
        "version": "1.0",
        "queryDate": query_date,
        "startDate": aws_time(datetime.fromtimestamp(evaluated[0].start if evaluated else first_start, tz=timezone.utc)),
        "statistic" if alarm.statistic else "extendedStatistic": stat_name,
        "period": period,
        "recentDatapoints": [p.value for p in evaluated],
        "threshold": threshold,
        "evaluatedDatapoints": [
            {"timestamp": aws_time(datetime.fromtimestamp(p.start, tz=timezone.utc)), "sampleCount": p.samples, "value": p.value}
            for p in reversed(evaluated)
        ],
    }
    alarm.update_state(reason, json.dumps(reason_data, separators=(",", ":")), new_state)
    LOG.info("alarm %s evaluated: %s -> %s (%s)", alarm.name, old_state, new_state, reason)
    return {"alarmName": alarm.name, "from": old_state, "to": new_state, "reason": reason, "at": now}


def treatment_word(treatment: str) -> str:
    return {"breaching": "Breaching", "notBreaching": "NonBreaching"}.get(treatment, treatment)


# ------------------------------------------------------------------ PutMetricAlarm validation


def _validate_metric_alarm(self: Any) -> None:
    """What CloudWatch refuses at PutMetricAlarm (API Reference,
    PutMetricAlarm: Period "10, 20, 30, and any multiple of 60";
    EvaluationPeriods x Period at most one day; DatapointsToAlarm at most
    EvaluationPeriods; the band operators only with ThresholdMetricId)."""
    op = self._get_param("ComparisonOperator")
    if op in BAND_OPERATORS and not self._get_param("ThresholdMetricId"):
        raise ValidationError(
            f"ComparisonOperator {op} is for anomaly detection bands and requires ThresholdMetricId; "
            "use a static-threshold operator with Threshold"
        )
    if self._get_param("Metrics"):
        return
    period = self._get_param("Period")
    if period is not None:
        p = int(period)
        if p not in (10, 20, 30) and (p <= 0 or p % 60):
            raise InvalidParameterValue(f"The parameter Period must be 10, 20, 30 or a multiple of 60, not {p}.")
        n = self._get_param("EvaluationPeriods")
        if n is not None and int(n) * p > 86400:
            raise ValidationError("Metrics cannot be checked across more than a day (EvaluationPeriods * Period must be <= 86400).")
    n, m = self._get_param("EvaluationPeriods"), self._get_param("DatapointsToAlarm")
    if n is not None and m is not None and int(m) > int(n):
        raise ValidationError("DatapointsToAlarm must be less than or equal to EvaluationPeriods.")
    tmd = self._get_param("TreatMissingData")
    if tmd and tmd not in TREATMENTS:
        raise ValidationError(f"Option {tmd} is not supported. Supported options for parameter TreatMissingData are missing, ignore, breaching and notBreaching.")


def _patched_put_metric_alarm_response(self: Any) -> Any:
    _validate_metric_alarm(self)
    result = _original_put_metric_alarm_response(self)
    EVALUATOR.poke()
    return result


# ------------------------------------------------------------------ composite alarms


class RuleError(ValueError):
    pass


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<func>ALARM|OK|INSUFFICIENT_DATA)\s*\(\s*(?:"(?P<q>[^"]*)"|(?P<u>[^()"]*?))\s*\)
      | (?P<kw>AND|OR|NOT|TRUE|FALSE)\b
      | (?P<paren>[()])
    )""",
    re.VERBOSE,
)


def tokenize(rule: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    pos = 0
    text = rule.strip()
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise RuleError(f"Error in alarm rule syntax at character {pos + 1}: {text[pos:pos + 30]!r}")
        if m.group("func"):
            name = m.group("q") if m.group("q") is not None else (m.group("u") or "").strip()
            if not name:
                raise RuleError(f"Error in alarm rule syntax: {m.group('func')}() names no alarm")
            tokens.append(("func", (m.group("func"), name)))
        elif m.group("kw"):
            tokens.append(("kw", m.group("kw")))
        else:
            tokens.append(("paren", m.group("paren")))
        pos = m.end()
    if not tokens:
        raise RuleError("AlarmRule is empty")
    return tokens


def parse_rule(rule: str) -> Any:
    """AST: ("func", state, name) | ("const", bool) | ("not", x) | ("and"|"or", a, b)."""
    tokens = tokenize(rule)
    pos = 0

    def peek() -> tuple[str, Any] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> tuple[str, Any]:
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        return tok

    def expr_or() -> Any:
        left = expr_and()
        while peek() == ("kw", "OR"):
            take()
            left = ("or", left, expr_and())
        return left

    def expr_and() -> Any:
        left = expr_not()
        while peek() == ("kw", "AND"):
            take()
            left = ("and", left, expr_not())
        return left

    def expr_not() -> Any:
        if peek() == ("kw", "NOT"):
            take()
            return ("not", expr_not())
        return atom()

    def atom() -> Any:
        tok = peek()
        if tok is None:
            raise RuleError("Error in alarm rule syntax: unexpected end of rule")
        take()
        if tok[0] == "func":
            return ("func", tok[1][0], tok[1][1])
        if tok == ("kw", "TRUE"):
            return ("const", True)
        if tok == ("kw", "FALSE"):
            return ("const", False)
        if tok == ("paren", "("):
            inner = expr_or()
            if peek() != ("paren", ")"):
                raise RuleError("Error in alarm rule syntax: missing )")
            take()
            return inner
        raise RuleError(f"Error in alarm rule syntax: unexpected {tok[1]}")

    tree = expr_or()
    if pos != len(tokens):
        raise RuleError(f"Error in alarm rule syntax: unexpected {tokens[pos][1]}")
    return tree


def rule_children(tree: Any) -> list[str]:
    kind = tree[0]
    if kind == "func":
        return [tree[2]]
    if kind == "const":
        return []
    if kind == "not":
        return rule_children(tree[1])
    return rule_children(tree[1]) + rule_children(tree[2])


def _find(backend: Any, ref: str) -> Any:
    if ref.startswith("arn:"):
        name = ref.split(":alarm:", 1)[-1]
        alarm = backend.alarms.get(name)
        return alarm if alarm is not None and alarm.alarm_arn == ref else None
    return backend.alarms.get(ref)


def eval_rule(tree: Any, backend: Any) -> bool:
    kind = tree[0]
    if kind == "const":
        return bool(tree[1])
    if kind == "func":
        child = _find(backend, tree[2])
        return child is not None and child.state_value == tree[1]
    if kind == "not":
        return not eval_rule(tree[1], backend)
    if kind == "and":
        return eval_rule(tree[1], backend) and eval_rule(tree[2], backend)
    return eval_rule(tree[1], backend) or eval_rule(tree[2], backend)


def _long_date(dt: datetime) -> str:
    d = utc(dt)
    return d.strftime("%A %d %B, %Y %H:%M:%S UTC")


def evaluate_composite(backend: Any, alarm: Any, trigger: Any | None, depth: int = 0) -> None:
    """Sets a composite alarm's state from its rule; `trigger` is the child
    whose change caused the evaluation (None on creation)."""
    if depth > 20:
        LOG.warning("composite alarm %s: evaluation depth limit (a cycle?)", alarm.name)
        return
    try:
        tree = parse_rule(alarm.rule)
    except RuleError:
        return
    new_state = "ALARM" if eval_rule(tree, backend) else "OK"
    if new_state == alarm.state_value:
        return
    children = list({c.name: c for c in (_find(backend, ref) for ref in rule_children(tree)) if c is not None}.values())
    triggering = [trigger] if trigger is not None else children
    if trigger is not None:
        reason = f"{trigger.alarm_arn} transitioned to {trigger.state_value} at {_long_date(trigger.state_updated_timestamp)}"
    else:
        reason = "Composite alarm evaluated on creation: " + ", ".join(f"{c.name} is {c.state_value}" for c in children)
    reason_data = {
        "triggeringAlarms": [
            {"arn": c.alarm_arn, "state": {"value": c.state_value, "timestamp": aws_time(c.state_updated_timestamp)}}
            for c in triggering
        ]
    }
    _DEPTH.value = depth + 1
    try:
        alarm.update_state(reason, json.dumps(reason_data, separators=(",", ":")), new_state)
    finally:
        _DEPTH.value = depth


_DEPTH = threading.local()


def on_state_change(alarm: Any, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Listener: a child changed state, re-evaluate the composite alarms whose
    rule names it (by name or ARN)."""
    depth = getattr(_DEPTH, "value", 0)
    for backend in _backends():
        if backend.alarms.get(alarm.name) is not alarm:
            continue
        for parent in list(backend.alarms.values()):
            if not getattr(parent, "rule", None) or parent is alarm:
                continue
            try:
                refs = rule_children(parse_rule(parent.rule))
            except RuleError:
                continue
            if alarm.name in refs or alarm.alarm_arn in refs:
                evaluate_composite(backend, parent, alarm, depth)


def put_composite_alarm(self: Any) -> ActionResult:
    name = self._get_param("AlarmName")
    rule = self._get_param("AlarmRule")
    if not name or not rule:
        raise ValidationError("AlarmName and AlarmRule are required.")
    try:
        tree = parse_rule(rule)
    except RuleError as e:
        raise ValidationError(str(e))
    backend = self.cloudwatch_backend
    missing = [ref for ref in rule_children(tree) if _find(backend, ref) is None]
    if missing:
        raise ValidationError(f"Could not save the composite alarm as alarms {missing} in the alarm rule do not exist")
    if name in rule_children(tree):
        raise ValidationError("A composite alarm cannot reference itself in its AlarmRule.")
    previous = backend.alarms.get(name)
    if previous is not None and not getattr(previous, "rule", None):
        raise ValidationError(f"An alarm named {name} already exists and is a metric alarm.")
    alarm = cw_models.Alarm(
        account_id=backend.account_id,
        region_name=backend.region_name,
        name=name,
        namespace=None,  # type: ignore[arg-type]
        metric_name=None,  # type: ignore[arg-type]
        metric_data_queries=None,
        comparison_operator=None,  # type: ignore[arg-type]
        evaluation_periods=None,  # type: ignore[arg-type]
        datapoints_to_alarm=None,
        period=None,  # type: ignore[arg-type]
        threshold=None,  # type: ignore[arg-type]
        statistic=None,  # type: ignore[arg-type]
        extended_statistic=None,
        description=self._get_param("AlarmDescription"),
        dimensions=[],
        alarm_actions=self._get_param("AlarmActions", []),
        ok_actions=self._get_param("OKActions", []),
        insufficient_data_actions=self._get_param("InsufficientDataActions", []),
        unit=None,
        actions_enabled=self._get_bool_param("ActionsEnabled"),
        treat_missing_data=None,
        evaluate_low_sample_count_percentile=None,
        threshold_metric_id=None,
        rule=rule,
    )
    for attr, param in (
        ("actions_suppressor", "ActionsSuppressor"),
        ("actions_suppressor_wait_period", "ActionsSuppressorWaitPeriod"),
        ("actions_suppressor_extension_period", "ActionsSuppressorExtensionPeriod"),
    ):
        setattr(alarm, attr, self._get_param(param))
    if previous is not None:
        # "When you update an existing alarm, its state is left unchanged."
        alarm.state_value = previous.state_value
        alarm.state_reason = previous.state_reason
        alarm.state_reason_data = previous.state_reason_data
        alarm.state_updated_timestamp = previous.state_updated_timestamp
    else:
        alarm.state_value = "INSUFFICIENT_DATA"
    backend.alarms[name] = alarm
    tags = self._get_param("Tags", [])
    if tags:
        backend.tagger.tag_resource(alarm.alarm_arn, tags)
    add_history(
        {
            "AlarmName": name,
            "AlarmType": "CompositeAlarm",
            "Timestamp": utc(alarm.configuration_updated_timestamp),
            "HistoryItemType": "ConfigurationUpdate",
            "HistorySummary": f'Alarm "{name}" {"updated" if previous is not None else "created"}',
            "HistoryData": json.dumps(
                {"version": "1.0", "type": "Create" if previous is None else "Update", "createdAlarm": {"alarmName": name, "alarmRule": rule}},
                separators=(",", ":"),
            ),
        }
    )
    evaluate_composite(backend, alarm, None)
    return EmptyResult()


def _patched_delete_alarms(self: Any) -> Any:
    """DeleteAlarms (API Reference): an alarm that a composite alarm still
    depends on cannot be deleted ("you can't delete any composite alarm that
    is part of the cycle because there is always still a composite alarm
    that depends on that alarm"); deleting the parents in the same call is
    allowed."""
    names = set(self._get_param("AlarmNames", []) or [])
    backend = self.cloudwatch_backend
    for parent in list(backend.alarms.values()):
        if not getattr(parent, "rule", None) or parent.name in names:
            continue
        try:
            refs = rule_children(parse_rule(parent.rule))
        except RuleError:
            continue
        for name in names:
            child = backend.alarms.get(name)
            if child is not None and (name in refs or child.alarm_arn in refs):
                raise ValidationError(f"Alarm {name} cannot be deleted: composite alarm {parent.name} depends on it.")
    return _original_delete_alarms(self)


# ------------------------------------------------------------------ apply


_original_put_metric_alarm_response: Any = None
_original_delete_alarms: Any = None


def apply() -> None:
    global _original_put_metric_alarm_response, _original_delete_alarms
    _original_put_metric_alarm_response = cw_responses.CloudWatchResponse.put_metric_alarm
    _original_delete_alarms = cw_responses.CloudWatchResponse.delete_alarms
    cw_responses.CloudWatchResponse.delete_alarms = _patched_delete_alarms  # type: ignore[method-assign]  # patches moto's method
    cw_responses.CloudWatchResponse.put_metric_alarm = _patched_put_metric_alarm_response  # type: ignore[method-assign]  # patches moto's method
    cw_responses.CloudWatchResponse.put_composite_alarm = put_composite_alarm  # type: ignore[attr-defined]  # an action moto lacks
    if on_state_change not in STATE_CHANGE_LISTENERS:
        # Before the event delivery, so a composite's own transition follows its child's.
        STATE_CHANGE_LISTENERS.append(on_state_change)
    EVALUATOR.start()
