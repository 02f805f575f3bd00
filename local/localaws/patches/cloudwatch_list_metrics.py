"""CloudWatch ListMetrics: each metric listed once.

CloudWatch User Guide, "Metrics concepts" > "Dimensions": a metric is
identified by its namespace, name and *set* of dimensions, and the API
Reference of ListMetrics returns each such metric once, however many data
points it holds. moto 5.2.5 dedupes with `are_dimensions_same`, which
compares every dimension with every other one, so two metrics with two or
more dimensions are never "the same" and ListMetrics lists a [Service,
Version] metric once per PutMetricData datum (seen in CI as 4 entries where
there are 2 metrics). This module compares the dimensions as sets of
(name, value) pairs."""

from __future__ import annotations

from typing import Any

from moto.cloudwatch import models as cw_models


def _same(metric_dimensions: list[Any], dimensions: list[Any]) -> bool:
    a = [(d.name, d.value) for d in metric_dimensions]
    b = [(d.name, d.value) for d in dimensions]
    return len(a) == len(b) and set(a) == set(b)


def apply() -> None:
    cw_models.are_dimensions_same = _same
