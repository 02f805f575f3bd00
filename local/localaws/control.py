"""The control API of the local AWS, served by the same process under
`/_localaws/` (JSON in, JSON out). `api.LocalAws` wraps every endpoint.

GET    /_localaws/health                  {"ok": true}
GET    /_localaws/info                    endpoints, PIDs, switches
POST   /_localaws/reset                   moto backends + harness state
POST   /_localaws/reset-log               clear call, Route 53 and alarm-event logs
GET    /_localaws/calls                   ?service=&operation=&caller=&since=<seq>
GET    /_localaws/route53-changes         ?since=<seq>
GET    /_localaws/faults                  rules with counters
POST   /_localaws/faults                  add a rule (see faults.py)
DELETE /_localaws/faults[/<id>]           remove one or all rules
GET    /_localaws/route53-rate-limit
POST   /_localaws/route53-rate-limit      {"enabled": true, "rate": 5, "burst": 5, "caller": "any"}
GET    /_localaws/task-sets               task sets the scheduler stand-in knows
POST   /_localaws/task-set-health         {"externalId"|"taskSet": ..., or "next": true,
                                           "mode": "healthy"|"unhealthy"|"slow", "delaySeconds": 5}
GET    /_localaws/alarm-events            deliveries + switch
POST   /_localaws/alarm-events            {"enabled": false}
GET    /_localaws/sfn-status-events       execution status change deliveries to repair + switch
POST   /_localaws/sfn-status-events       {"enabled": false} | {"redeliver": "<eventId>"}
GET    /_localaws/events                  EventBridge PutEvents entries kept (?source=&detailType=&since=<seq>)
POST   /_localaws/events                  {"failNext": n} (next n entries fail) | {"clear": true}
GET    /_localaws/alarm-history           ?alarmName=  (what DescribeAlarmHistory serves)
POST   /_localaws/lambda                  {"url": "http://127.0.0.1:PORT"} (re-point Task invokes)
GET    /_localaws/alarm-evaluation        evaluator settings and counters
POST   /_localaws/alarm-evaluation        {"enabled": true, "tickSeconds": 10, "delaySeconds": 0,
                                           "evaluateNow": true, "at": <epoch s>}
GET    /_localaws/cloudwatch-rate-limit
POST   /_localaws/cloudwatch-rate-limit   {"enabled": true, "rates": {"DescribeAlarms": 9,
                                           "DescribeAlarmHistory": 20}, "burst": {...}, "caller": "any"}
GET    /_localaws/stepfunctions-rate-limit
POST   /_localaws/stepfunctions-rate-limit {"enabled": true, "rates": {...}, "burst": {...}, "caller": "any"}
GET    /_localaws/dynamodb-ttl
POST   /_localaws/dynamodb-ttl            {"sweepSeconds": 5, "delaySeconds": 0, "sweepNow": true}
GET    /_localaws/dns                     DNS endpoints, settings, query count
POST   /_localaws/dns/route53-propagation {"seconds": 0, "spread": 0}
POST   /_localaws/dns/cloudmap-delay      {"seconds": 0}
GET    /_localaws/images                  per-image behaviour of the tasks that serve
POST   /_localaws/images                  {"image": "<full image or tag suffix>", "errorRate": 0.3,
                                           "latencyMs": 20, "healthCheck": "pass"|"fail"}
GET    /_localaws/ecs-realism             ECS realism settings
POST   /_localaws/ecs-realism             {"taskStartSeconds", "taskStopSeconds", "stopTimeoutSeconds",
                                           "readLagMs", "unknownHealth", "createTaskSetChecks"}
GET    /_localaws/tasks                   every task: address, task port, image, status, health
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qs

from .faults import FAULTS
from .ratelimit import CLOUDWATCH_LIMIT, ROUTE53_LIMIT, STEPFUNCTIONS_LIMIT
from .state import MOTO_LOCK, STATE, HealthPlan

LOG = logging.getLogger("localaws.control")

Response = tuple[int, list[tuple[str, str]], bytes]

# Filled by the server at start: ports, URLs, PIDs.
INFO: dict[str, Any] = {}


def _json(status: int, doc: Any) -> Response:
    return status, [("Content-Type", "application/json")], json.dumps(doc, default=str).encode()


def reset_harness() -> None:
    from .patches import cloudwatch_eval, dynamodb_ttl, ecs_scheduler, sfn_execution

    from . import dns_server, resolver

    ecs_scheduler.reset()  # tasks stop (deregistered first), images and ECS realism back to defaults
    FAULTS.remove()
    ROUTE53_LIMIT.configure(False)
    CLOUDWATCH_LIMIT.configure(False)
    STEPFUNCTIONS_LIMIT.configure(False)
    dynamodb_ttl.SWEEPER.reset()
    cloudwatch_eval.EVALUATOR.reset()
    dns_server.PUBLISHER.reset()
    resolver.flush_caches()
    STATE.reset()
    sfn_execution.apply()
    from .patches import sfn_status_events

    sfn_status_events.reset()
    from .patches import eventbridge_capture

    eventbridge_capture.reset()


def reset_all() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()
    reset_harness()


def _body(environ: dict[str, Any]) -> dict[str, Any]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    if not raw.strip():
        return {}
    doc = json.loads(raw)
    if not isinstance(doc, dict):
        raise ValueError("JSON object expected")
    return doc


def handle(environ: dict[str, Any], app: Any) -> Response:
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "").rstrip("/")
    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    try:
        body = _body(environ) if method in ("POST", "PUT", "DELETE") else {}
        with MOTO_LOCK:
            return _route(method, path, query, body)
    except (ValueError, KeyError, TypeError) as e:
        return _json(400, {"error": f"{type(e).__name__}: {e}"})


def _route(method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> Response:
    from .patches import dynamodb_ttl, ecs_scheduler
    from .patches.cloudwatch_history import query_history

    if path == "/_localaws/health":
        return _json(200, {"ok": True})
    if path == "/_localaws/info":
        with STATE.lock:
            doc = dict(INFO)
            doc["lambdaUrl"] = STATE.lambda_url
            doc["alarmEventsEnabled"] = STATE.alarm_events_enabled
        doc["route53RateLimit"] = ROUTE53_LIMIT.status()
        return _json(200, doc)
    if path == "/_localaws/reset" and method == "POST":
        reset_all()
        return _json(200, {"ok": True})
    if path == "/_localaws/reset-log" and method == "POST":
        STATE.clear_logs()
        return _json(200, {"ok": True})
    if path == "/_localaws/calls":
        since = int(query.get("since", 0))
        with STATE.lock:
            calls = [c for c in STATE.calls if c["seq"] > since]
        for key in ("service", "operation", "caller"):
            if key in query:
                calls = [c for c in calls if str(c.get(key)).lower() == query[key].lower()]
        return _json(200, {"calls": calls})
    if path == "/_localaws/route53-changes":
        since = int(query.get("since", 0))
        with STATE.lock:
            changes = [c for c in STATE.route53_changes if c["seq"] > since]
        return _json(200, {"changes": changes})
    if path == "/_localaws/faults":
        if method == "POST":
            rule = FAULTS.add(body)
            LOG.info("fault rule added: %s", rule.to_json())
            return _json(200, rule.to_json())
        if method == "DELETE":
            return _json(200, {"removed": FAULTS.remove()})
        return _json(200, {"faults": FAULTS.list()})
    if path.startswith("/_localaws/faults/") and method == "DELETE":
        return _json(200, {"removed": FAULTS.remove(int(path.rsplit("/", 1)[1]))})
    if path == "/_localaws/route53-rate-limit":
        if method == "POST":
            status = ROUTE53_LIMIT.configure(
                bool(body.get("enabled", True)),
                float(body.get("rate", 5.0)),
                float(body["burst"]) if body.get("burst") is not None else None,
                str(body.get("caller", "any")),
            )
            return _json(200, status)
        return _json(200, ROUTE53_LIMIT.status())
    if path == "/_localaws/task-sets":
        return _json(200, {"taskSets": ecs_scheduler.describe()})
    if path == "/_localaws/task-set-health" and method == "POST":
        mode = str(body.get("mode", "unhealthy"))
        if mode not in ("healthy", "unhealthy", "slow"):
            raise ValueError("mode must be healthy, unhealthy or slow")
        plan = HealthPlan(mode, float(body.get("delaySeconds", 0.0)))
        selector = body.get("externalId") or body.get("taskSet")
        if not selector and not body.get("next"):
            raise ValueError('give "externalId", "taskSet", or "next": true')
        applied = ecs_scheduler.set_health_plan(plan, None if body.get("next") else str(selector))
        return _json(200, {"plan": plan.to_json(), "appliedTo": applied, "next": bool(body.get("next"))})
    from .patches import sfn_status_events

    from .patches import eventbridge_capture

    events_answer = eventbridge_capture.control_route(method, path, query, body)
    if events_answer is not None:
        return _json(*events_answer)
    status_answer = sfn_status_events.control_route(method, path, body)
    if status_answer is not None:
        return _json(*status_answer)
    scheduler_answer = ecs_scheduler.control_route(method, path, body)
    if scheduler_answer is not None:
        return _json(*scheduler_answer)
    if path == "/_localaws/alarm-events":
        if method == "POST":
            with STATE.lock:
                STATE.alarm_events_enabled = bool(body.get("enabled", True))
        with STATE.lock:
            return _json(
                200,
                {"enabled": STATE.alarm_events_enabled, "deliveries": list(STATE.alarm_event_deliveries)},
            )
    if path == "/_localaws/alarm-history":
        items = query_history(alarm_name=query.get("alarmName"))
        return _json(200, {"items": items})
    if path == "/_localaws/alarm-evaluation":
        from .patches.cloudwatch_eval import EVALUATOR

        if method == "POST":
            EVALUATOR.configure(
                body.get("enabled"),
                body.get("tickSeconds"),
                body.get("delaySeconds"),
            )
            if body.get("evaluateNow"):
                changes = EVALUATOR.evaluate_all(body.get("at"))
                return _json(200, {**EVALUATOR.status(), "transitions": changes})
        return _json(200, EVALUATOR.status())
    if path == "/_localaws/cloudwatch-rate-limit":
        if method == "POST":
            return _json(
                200,
                CLOUDWATCH_LIMIT.configure(
                    bool(body.get("enabled", True)),
                    body.get("rates"),
                    body.get("burst"),
                    str(body.get("caller", "any")),
                ),
            )
        return _json(200, CLOUDWATCH_LIMIT.status())
    if path == "/_localaws/stepfunctions-rate-limit":
        if method == "POST":
            return _json(
                200,
                STEPFUNCTIONS_LIMIT.configure(
                    bool(body.get("enabled", True)),
                    body.get("rates"),
                    body.get("burst"),
                    str(body.get("caller", "any")),
                ),
            )
        return _json(200, STEPFUNCTIONS_LIMIT.status())
    ttl_answer = dynamodb_ttl.control_route(method, path, body)
    if ttl_answer is not None:
        return _json(*ttl_answer)
    if path.startswith("/_localaws/dns"):
        return _dns_route(method, path, body)
    if path == "/_localaws/lambda" and method == "POST":
        with STATE.lock:
            STATE.lambda_url = body.get("url") or None
        return _json(200, {"lambdaUrl": STATE.lambda_url})
    return _json(404, {"error": f"no control endpoint {method} {path}"})


def _dns_route(method: str, path: str, body: dict[str, Any]) -> Response:
    from . import dns_server

    if path == "/_localaws/dns/route53-propagation" and method == "POST":
        settings = dns_server.set_route53_propagation(float(body.get("seconds", 0.0)), float(body.get("spread", 0.0)))
        LOG.info("DNS: Route 53 propagation %s", settings.to_json()["route53Propagation"])
    elif path == "/_localaws/dns/cloudmap-delay" and method == "POST":
        settings = dns_server.set_cloudmap_dns_delay(float(body.get("seconds", 0.0)))
        LOG.info("DNS: Cloud Map DNS delay %s", settings.to_json()["cloudMapDnsDelay"])
    elif path != "/_localaws/dns" or method != "GET":
        return _json(404, {"error": f"no control endpoint {method} {path}"})
    doc = dict(INFO.get("dns") or {})
    doc["settings"] = dns_server.PUBLISHER.settings.to_json()
    doc["queries"] = dns_server.STATS["queries"]
    return _json(200, doc)
