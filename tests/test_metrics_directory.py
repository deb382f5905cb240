"""Where every process of an installation keeps its counts (docs/operations.md#metrics)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from targetadmin import metrics_directory


def a_dead_pid() -> int:
    """The id of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_metrics_are_off_without_a_token_or_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    monkeypatch.delenv("METRICS_ALLOWED_NETWORKS", raising=False)

    assert metrics_directory.prepare() is None


def test_it_refuses_a_directory_named_after_prometheus_client_was_imported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # This process imported prometheus_client (the instruments) without a directory.
    monkeypatch.setenv("METRICS_ALLOWED_NETWORKS", "127.0.0.0/8")
    monkeypatch.setenv("METRICS_DIR", str(tmp_path / "metrics"))
    monkeypatch.delenv(metrics_directory.MULTIPROCESS_VARIABLE, raising=False)

    with pytest.raises(ImproperlyConfigured, match="imported before the metrics directory"):
        metrics_directory.prepare()


def test_server_start_clears_only_the_files_of_processes_that_no_longer_run(
    tmp_path: Path,
) -> None:
    dead, living = a_dead_pid(), os.getpid()
    for name in (f"counter_{dead}.db", f"gauge_max_{dead}.db", f"counter_{living}.db", "x.db"):
        (tmp_path / name).write_bytes(b"")

    removed = metrics_directory.clear_dead_processes(tmp_path)

    assert sorted(file.name for file in removed) == [f"counter_{dead}.db", f"gauge_max_{dead}.db"]
    assert sorted(file.name for file in tmp_path.iterdir()) == [f"counter_{living}.db", "x.db"]


def test_a_worker_that_exits_keeps_its_counts_and_loses_its_live_gauges(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(metrics_directory.MULTIPROCESS_VARIABLE, str(tmp_path))
    for name in ("counter_4242.db", "gauge_livesum_4242.db", "gauge_max_4242.db"):
        (tmp_path / name).write_bytes(b"")

    metrics_directory.mark_dead(4242)

    assert sorted(file.name for file in tmp_path.iterdir()) == [
        "counter_4242.db",
        "gauge_max_4242.db",
    ]


COUNT_AND_EXIT = """
from profiles.rules import metrics
assert metrics.recording
metrics.count_request(metrics.Endpoint.FETCH, 200, 0.0)
"""


def test_a_process_that_exits_in_good_order_moves_the_requests_it_held(tmp_path: Path) -> None:
    # It ends well within the second its mover waits before the first move.
    env = {**os.environ, metrics_directory.MULTIPROCESS_VARIABLE: str(tmp_path)}
    subprocess.run([sys.executable, "-c", COUNT_AND_EXIT], env=env, check=True)  # noqa: S603 - ours

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))  # type: ignore[no-untyped-call]
    labels = {"endpoint": "fetch", "status": "2xx"}
    assert registry.get_sample_value("targetadmin_requests_total", labels) == 1
