"""What the processes count for ``/metrics`` (docs/operations.md#metrics), each instrument once.

Every layer counts through the functions below; ``profiles.api.scrape`` serves the sum of
every process's counts together with the facts read from the database at scrape time.
Labels take values from the fixed sets written here (and client codes, in the database
facts): never a token, a profile id or an address.

Counting is on in a process with a metrics directory: one where ``prometheus_client`` was
imported in its multiprocess mode (targetadmin/metrics_directory.py). Elsewhere, metrics off,
:data:`recording` is false and every function returns at once. It is read from
``prometheus_client`` rather than the settings, as gunicorn's master imports this module
(through the log formatter) before any settings are loaded.

Requests are the hot path: each is held in this process's memory (:class:`HeldRequests`, a
few additions under a lock of its own) and the sums are moved into the shared values once a
second, from a thread of the process's own, when the process stops, and before this process
answers a scrape. A write to the shared values costs some microseconds (a memory-mapped
file, under the one lock every value of the process shares), and a request would pay for
three. Everything else is counted straight into the shared values: it happens once a batch
or a refusal, not once a request.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from bisect import bisect_left
from collections.abc import Mapping
from enum import StrEnum

from prometheus_client import Counter, Gauge, Histogram, values


class Endpoint(StrEnum):
    """The groups requests are counted in (``endpoint``)."""

    UPDATE = "update"
    FETCH = "fetch"
    BATCH = "batch"
    JSON_BULK = "json_bulk"
    MANAGEMENT = "management"
    PAGES = "pages"
    OTHER = "other"


class Refusal(StrEnum):
    """Why the profile API gate refused a call (``reason``)."""

    MISSING = "missing"
    INVALID = "invalid"
    EXPIRED = "expired"
    REVOKED = "revoked"  # a token of the client's, revoked or replaced (its grace period over)
    NETWORK = "network"
    SCOPE = "scope"  # a token without the permission the call needs (403 token_scope)
    THROTTLED = "throttled"


class RowOutcome(StrEnum):
    """What became of a batch's row (``outcome``)."""

    APPLIED = "applied"
    NOT_FOUND = "not_found"
    FAILED = "failed"


class Fault(StrEnum):
    """A database fault answered 503 or 507 (``fault``, profiles.rules.faults)."""

    BUSY = "busy"
    DISK_FULL = "disk_full"


# The views' URL names (profiles/urls.py) in each API's group; any other view is a page,
# or ``other`` when it names none (static files, a 404) or is one of these.
ENDPOINTS_BY_URL_NAME: Mapping[str, Endpoint] = {
    "profile_update": Endpoint.UPDATE,
    "profile_fetch": Endpoint.FETCH,
    "profile_fetch_by_third_party_id": Endpoint.FETCH,
    "batch_update": Endpoint.BATCH,
    "batch_update_v2": Endpoint.BATCH,
    "batch_status": Endpoint.BATCH,
    "batch_status_v2": Endpoint.BATCH,
    "bulk": Endpoint.JSON_BULK,
    "bulk_batch": Endpoint.JSON_BULK,
    "openapi": Endpoint.OTHER,
    "healthz": Endpoint.OTHER,
    "metrics": Endpoint.OTHER,
}
MANAGEMENT_NAMESPACE = "admin_api"

REQUEST_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

REQUESTS = Counter(
    "targetadmin_requests",
    "Requests answered, by endpoint group and status class (2xx, 4xx, 5xx).",
    ["endpoint", "status"],
)
REQUEST_DURATION = Histogram(
    "targetadmin_request_duration_seconds",
    "Seconds from a request's arrival in the application to its answer, by endpoint group.",
    ["endpoint"],
    buckets=REQUEST_BUCKETS,
)
AUTH_REFUSALS = Counter(
    "targetadmin_auth_refusals",
    "Profile API calls refused by the gate, by reason.",
    ["reason"],
)
BATCHES = Counter(
    "targetadmin_batches",
    "Batches that reached a final status (complete or stuck).",
    ["status"],
)
BATCH_ROWS = Counter(
    "targetadmin_batch_rows",
    "Rows of batches committed, by outcome (applied, not_found, failed).",
    ["outcome"],
)
_BATCH_BUCKETS = (0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)
BATCH_DURATION = Histogram(
    "targetadmin_batch_duration_seconds",
    "Seconds from a batch's submission to its final status.",
    buckets=_BATCH_BUCKETS,
)
BATCH_QUEUE_WAIT = Histogram(
    "targetadmin_batch_queue_wait_seconds",
    "Seconds a batch waited from its submission until a task worker started it.",
    buckets=_BATCH_BUCKETS,
)
WORKER_HEARTBEAT = Gauge(
    "targetadmin_worker_last_heartbeat_timestamp_seconds",
    "When a task worker last beat (Unix time); the latest of all task workers.",
    multiprocess_mode="max",
)
SQLITE_WRITER_WAIT = Histogram(
    "targetadmin_sqlite_writer_wait_seconds",
    "Seconds each writer waited in SQLite's writer queue for the write lock.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20),
)
DATABASE_FAULTS = Counter(
    "targetadmin_database_faults",
    "Database faults answered with 503 (busy: SQLite's writer queue past its timeout) or "
    "507 (disk full); nothing of the refused change was applied.",
    ["fault"],
)

INSTRUMENTS = (
    REQUESTS,
    REQUEST_DURATION,
    AUTH_REFUSALS,
    BATCHES,
    BATCH_ROWS,
    BATCH_DURATION,
    BATCH_QUEUE_WAIT,
    WORKER_HEARTBEAT,
    SQLITE_WRITER_WAIT,
    DATABASE_FAULTS,
)

recording: bool = values.ValueClass is not values.MutexValue

# Children bound once: (endpoint, status // 100) -> (its counter, its histogram).
_REQUEST_CHILDREN = {
    (endpoint, status_class): (
        REQUESTS.labels(endpoint.value, f"{status_class}xx"),
        REQUEST_DURATION.labels(endpoint.value),
    )
    for endpoint in Endpoint
    for status_class in range(1, 10)
}
_REFUSALS = {reason: AUTH_REFUSALS.labels(reason.value) for reason in Refusal}
_FAULTS = {fault: DATABASE_FAULTS.labels(fault.value) for fault in Fault}
_ROWS = {outcome: BATCH_ROWS.labels(outcome.value) for outcome in RowOutcome}

MOVE_SECONDS = 1.0
"""How often a process moves the requests it holds into the shared values: a scrape sees
another process's requests at most this late."""

# A held group's sums: how many requests, their seconds, then how many fell in each of the
# histogram's buckets (the last one +Inf), as Histogram.observe counts them.
_COUNT, _SECONDS, _FIRST_BUCKET = 0, 1, 2
_BOUNDS = (*REQUEST_BUCKETS, float("inf"))


class HeldRequests:
    """The requests this process counted since it last moved them into the shared values."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._moving = threading.Lock()
        self._held: dict[tuple[Endpoint, int], list[float]] = {}
        self._mover: threading.Thread | None = None

    def count(self, endpoint: Endpoint, status_class: int, seconds: float) -> None:
        bucket = _FIRST_BUCKET + bisect_left(_BOUNDS, seconds)
        with self._lock:
            sums = self._held.get((endpoint, status_class))
            if sums is None:
                sums = self._held[endpoint, status_class] = [0, 0.0] + [0] * len(_BOUNDS)
            sums[_COUNT] += 1
            sums[_SECONDS] += seconds
            sums[bucket] += 1
            if self._mover is None:
                self._start_mover()

    def move(self) -> None:
        """Add what is held to the shared values, and hold nothing. Returns once every
        request counted before the call is in them, whichever thread moves it."""
        with self._moving:
            with self._lock:
                taken, self._held = self._held, {}
            self._add(taken)

    @staticmethod
    def _add(taken: dict[tuple[Endpoint, int], list[float]]) -> None:
        for key, sums in taken.items():
            counted, timed = _REQUEST_CHILDREN[key]
            counted.inc(sums[_COUNT])
            # What Histogram.observe does for each observation, once for all of them
            # (prometheus_client is pinned; tests/test_metrics.py holds the two alike).
            timed._sum.inc(sums[_SECONDS])
            for index, observed in enumerate(sums[_FIRST_BUCKET:]):
                if observed:
                    timed._buckets[index].inc(observed)

    def _start_mover(self) -> None:
        """The thread that moves the sums every ``MOVE_SECONDS``, started by the process's
        first request, whatever server runs it (a last move runs when the process exits)."""
        self._mover = threading.Thread(target=self._move_every_second, name="metrics-mover")
        self._mover.daemon = True
        self._mover.start()

    def _move_every_second(self) -> None:
        while True:
            time.sleep(MOVE_SECONDS)
            self.move()

    def forget_after_fork(self) -> None:
        # A forked child holds its parent's sums, which the parent moves: never again here,
        # and the parent's lock and thread are not the child's.
        self._lock = threading.Lock()
        self._moving = threading.Lock()
        self._held = {}
        self._mover = None


HELD = HeldRequests()
os.register_at_fork(after_in_child=HELD.forget_after_fork)
atexit.register(HELD.move)


def count_request(endpoint: Endpoint, status: int, started: float) -> None:
    """One answered request of ``endpoint`` with ``status``, which arrived at ``started``
    (``time.perf_counter``)."""
    if recording:
        HELD.count(endpoint, status // 100, time.perf_counter() - started)


def count_refusal(reason: Refusal) -> None:
    if recording:
        _REFUSALS[reason].inc()


def count_fault(fault: Fault) -> None:
    if recording:
        _FAULTS[fault].inc()


def count_rows(applied: int, not_found: int, failed: int) -> None:
    """The rows of one committed chunk of a batch."""
    if not recording:
        return
    for outcome, rows in (
        (RowOutcome.APPLIED, applied),
        (RowOutcome.NOT_FOUND, not_found),
        (RowOutcome.FAILED, failed),
    ):
        if rows:
            _ROWS[outcome].inc(rows)


def count_batch_finished(status: str, seconds: float) -> None:
    """A batch reached ``status`` (complete or stuck) ``seconds`` after its submission."""
    if not recording:
        return
    BATCHES.labels(status).inc()
    BATCH_DURATION.observe(seconds)


def count_batch_started(waited: float) -> None:
    """A task worker started a batch ``waited`` seconds after its submission."""
    if recording:
        BATCH_QUEUE_WAIT.observe(waited)


def observe_writer_wait(seconds: float) -> None:
    """A writer waited ``seconds`` in SQLite's writer queue (adapters/sqlite/writers.py)."""
    if recording:
        SQLITE_WRITER_WAIT.observe(seconds)


def beat() -> None:
    """The task worker is alive now."""
    if recording:
        WORKER_HEARTBEAT.set(time.time())
