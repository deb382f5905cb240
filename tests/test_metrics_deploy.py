"""The alert rules and the dashboard in deploy/ (docs/operations.md#metrics) parse, and
name only metrics that /metrics serves."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from profiles.api.facts import DatabaseFacts
from profiles.rules import metrics

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "targetadmin.json"
METRIC_NAME = re.compile(r"\btargetadmin_[a-z0-9_]+")
# The names of a family's samples in the text format, by the family's type.
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


@pytest.fixture
def served(db: None) -> dict[str, str]:
    """Every sample name /metrics can serve, with the family it belongs to."""
    families = [
        family
        for collector in (*metrics.INSTRUMENTS, DatabaseFacts())
        for family in collector.collect()
    ]
    return {
        f"{family.name}{suffix}": family.name
        for family in families
        for suffix in SUFFIXES[family.type]
    }


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    document = json.loads(DASHBOARD.read_text())
    return [
        target["expr"]
        for panel in document["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def test_the_alert_rules_parse_each_with_a_severity_and_a_summary() -> None:
    found = rules()

    assert found
    for rule in found:
        assert set(rule) >= {"alert", "expr", "labels", "annotations"}, rule
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_the_alert_rules_name_only_metrics_that_exist(served: dict[str, str]) -> None:
    for rule in rules():
        named = set(METRIC_NAME.findall(rule["expr"]))
        assert named, rule["alert"]
        assert named <= set(served), (rule["alert"], named - set(served))


def test_the_alerts_the_operators_need_are_there() -> None:
    watched = {rule["alert"]: " ".join(rule["expr"].split()) for rule in rules()}

    assert "time() < 7 * 86400" in watched["TargetadminTokenExpiresSoon"]
    assert "targetadmin_authentication_required) == 1" in watched["TargetadminTokenExpired"]
    assert (
        "targetadmin_batch_queue_oldest_age_seconds) > 600"
        in (watched["TargetadminBatchQueueStale"])
    )
    assert (
        "targetadmin_worker_last_heartbeat_timestamp_seconds) > 120"
        in (watched["TargetadminTaskWorkerSilent"])
    )
    assert 'status="5xx"' in watched["TargetadminServerErrors"]
    assert watched["TargetadminServerErrors"].endswith("> 0.01")
    assert "targetadmin_auth_refusals_total" in watched["TargetadminRefusalsSpiking"]


def test_the_dashboard_names_only_metrics_that_exist(served: dict[str, str]) -> None:
    queries = dashboard_queries()

    assert queries
    for query in queries:
        named = set(METRIC_NAME.findall(query))
        assert named, query
        assert named <= set(served), (query, named - set(served))


def test_the_dashboard_shows_every_metric(served: dict[str, str]) -> None:
    shown = {served[name] for query in dashboard_queries() for name in METRIC_NAME.findall(query)}

    assert shown == set(served.values())
