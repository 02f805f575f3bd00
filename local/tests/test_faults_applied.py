"""Fault kind `applied-5xx` (the call is applied, its answer lost) and
fault rules scoped to one service's resources (issue 12)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from no_retry import no_retry_client as _no_retry

from localaws import LocalAws


def test_applied_5xx_applies_the_call_then_answers_500(aws: LocalAws) -> None:
    ecs = _no_retry(aws, "ecs")
    aws.fail_next("ecs", "CreateCluster", "applied-5xx", caller="harness")
    with pytest.raises(ClientError) as e:
        ecs.create_cluster(clusterName="lost-answer")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    # ... yet the cluster exists: the call was applied.
    names = [c["clusterName"] for c in ecs.describe_clusters(clusters=["lost-answer"])["clusters"]]
    assert names == ["lost-answer"]
    call = [c for c in aws.calls(service="ecs", operation="CreateCluster")][-1]
    assert call["status"] == 500 and call["fault"]["kind"] == "applied-5xx" and call["fault"]["appliedStatus"] == 200


def test_a_rule_scoped_to_a_resource_fails_only_that_resource(aws: LocalAws) -> None:
    ecs = _no_retry(aws, "ecs")
    aws.fail_for("ecs", "CreateCluster", "permanent", seconds=30, caller="harness", resource="only-this-one")
    ecs.create_cluster(clusterName="another-one")  # not scoped: succeeds
    with pytest.raises(ClientError) as e:
        ecs.create_cluster(clusterName="only-this-one")
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    rule = aws.faults()[0]
    assert rule["resource"] == "only-this-one" and len(rule["fired"]) == 1
