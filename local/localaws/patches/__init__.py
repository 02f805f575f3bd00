"""Monkeypatches applied to moto inside the local AWS process. Each module
fixes one quirk or adds one missing behaviour and says why in its docstring;
`apply_all()` applies them once."""

from __future__ import annotations

import threading

_applied = False
_lock = threading.Lock()


def apply_all() -> None:
    global _applied
    with _lock:
        if _applied:
            return
        from . import (
            alarm_events,
            cloudwatch_eval,
            cloudwatch_history,
            cloudwatch_list_metrics,
            dns_state,
            dynamodb_ttl,
            ecs_errors,
            eventbridge_capture,
            ecs_primary_task_set,
            ecs_scheduler,
            route53_change_batch,
            sfn_callbacks,
            sfn_execution,
            sfn_heartbeat,
            sfn_history,
            sfn_lambda_invoke,
            sfn_status_events,
            sfn_wait_timestamp,
        )

        sfn_execution.apply()
        sfn_lambda_invoke.apply()
        sfn_callbacks.apply()
        sfn_heartbeat.apply()
        dynamodb_ttl.apply()
        sfn_history.apply()
        sfn_wait_timestamp.apply()
        sfn_status_events.apply()
        eventbridge_capture.apply()
        cloudwatch_history.apply()
        cloudwatch_list_metrics.apply()
        alarm_events.apply()
        cloudwatch_eval.apply()
        ecs_errors.apply()
        ecs_scheduler.apply()
        ecs_primary_task_set.apply()
        # route53_change_batch replaces ChangeResourceRecordSets outright; dns_state
        # wraps whatever is there (change ids, PENDING, DNS view): so the batch first,
        # else GetChange answers NoSuchChange for every change.
        route53_change_batch.apply()
        dns_state.apply()
        _applied = True
