"""Where every process of an installation keeps its metrics (docs/operations.md#metrics).

``prometheus_client`` counts in each process on its own; in its multiprocess mode each
process writes its values into files of one shared directory, which ``/metrics`` adds up,
so the gunicorn workers and the task worker answer as one. The mode is chosen when
``prometheus_client`` is first imported, from ``PROMETHEUS_MULTIPROC_DIR``: so
:func:`prepare` sets it in the settings (every Django process reads them before the app
imports ``prometheus_client``) and in ``gunicorn.conf.py`` (the master, whose workers
inherit it). gunicorn's master clears the files of processes no longer running when it
starts (:func:`clear_dead_processes`) and marks each worker that exits as dead
(:func:`mark_dead`).

While metrics are off (neither ``METRICS_TOKEN`` nor ``METRICS_ALLOWED_NETWORKS`` set) there
is no directory and nothing is counted.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from targetadmin.environment import env_str, var_dir

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def metrics_enabled() -> bool:
    """Whether ``/metrics`` is served, and so whether anything is counted."""
    return bool(os.environ.get("METRICS_TOKEN") or os.environ.get("METRICS_ALLOWED_NETWORKS"))


def prepare() -> Path | None:
    """The metrics directory of this installation, made and named in the environment for
    ``prometheus_client``; ``None`` while metrics are off."""
    if not metrics_enabled():
        return None
    directory = Path(env_str("METRICS_DIR", str(var_dir() / "metrics")))
    if "prometheus_client.values" in sys.modules and os.environ.get(MULTIPROCESS_VARIABLE) != str(
        directory
    ):
        raise ImproperlyConfigured(
            "prometheus_client was imported before the metrics directory was set up"
        )
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.environ[MULTIPROCESS_VARIABLE] = str(directory)
    return directory


def _pid_of(file: Path) -> int | None:
    """The process a value file belongs to: ``counter_1234.db``, ``gauge_max_1234.db``."""
    last = file.stem.rpartition("_")[2]
    return int(last) if last.isdigit() else None


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: not ours to judge
    return True


def clear_dead_processes(directory: Path) -> list[Path]:
    """Remove the value files of processes that no longer run; returns those removed.

    The files of a task worker started before gunicorn stay, so its counts go on.
    """
    removed = []
    for file in sorted(directory.glob("*.db")):
        pid = _pid_of(file)
        if pid is not None and not _is_running(pid):
            file.unlink(missing_ok=True)
            removed.append(file)
    return removed


def mark_dead(pid: int) -> None:
    """What ``prometheus_client`` keeps of a process that exited: its counts, added up
    with the living ones' (counters never go down), and no longer its live gauges."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
