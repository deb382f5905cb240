"""A worker killed anywhere in a batch loses nothing: resumed, the batch ends exactly as an
uninterrupted run would, and no chunk that was already committed is applied a second time.

"Anywhere" is every database statement the worker runs: the kill lands before statement k,
for every k, so it falls inside a chunk (profiles written, counts not yet recorded), between
a chunk's commit and the next one, and just before and just after the batch is marked
complete."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection
from django.test import Client as HttpClient

from profiles import tasks
from profiles.ingest import processing
from profiles.ingest.batches import Batch, BatchFailure, Status
from profiles.models import Client, Profile
from tests.batches import batch_id_of, submit
from tests.test_batch_lifecycle import WorkerKilled, stall

EXISTING = {"p2": "old", "p5": "old"}  # v1 updates existing profiles only
ROWS = (
    "batch=pcId,a\n"
    + "".join(f"p{n},v{n}\n" for n in range(1, 8))
    + "bad/,x,y\n"  # fails: one cell too many
)
EXPECTED_VALUES = {"p2": "v2", "p5": "v5"}
EXPECTED_COUNTS = (8, 2, 5, 1)  # consumed, successful, not found, failed


class StatementCounter:
    """Counts the worker's database statements and kills it before the ``kill_at``-th.

    The kill happens once: the rollback that follows stands for the database discarding a
    dead connection's open transaction.
    """

    def __init__(self, kill_at: int | None) -> None:
        self.kill_at = kill_at
        self.seen = 0

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        if self.seen == self.kill_at:
            self.kill_at = None
            raise WorkerKilled
        self.seen += 1
        return execute(sql, params, many, context)


@contextmanager
def worker_watched(monkeypatch: pytest.MonkeyPatch, counter: StatementCounter) -> Iterator[None]:
    real_run = processing.run

    def run(batch_id: str) -> None:
        with connection.execute_wrapper(counter):
            real_run(batch_id)

    monkeypatch.setattr(processing, "run", run)
    try:
        yield
    finally:
        monkeypatch.setattr(processing, "run", real_run)


def start_batch(demo: Client, http: HttpClient, counter: StatementCounter, mp: Any) -> str:
    Profile.objects.filter(client=demo).delete()
    for pc_id, value in EXISTING.items():
        Profile.objects.create(
            client=demo,
            pc_id=pc_id,
            attributes={"a": {"value": value, "modifiedAt": "2026-01-01T00:00:00+00:00"}},
        )
    with worker_watched(mp, counter):
        return batch_id_of(submit(http, ROWS, version="v1"))


def values(demo: Client) -> dict[str, str]:
    return {
        profile.pc_id: profile.attributes.get("a", {}).get("value", "")
        for profile in Profile.objects.filter(client=demo)
    }


def counts(batch: Batch) -> tuple[int, int, int, int]:
    return (
        batch.consumed_count,
        batch.successful_updates,
        batch.profiles_not_found,
        batch.failed_updates,
    )


def test_an_uninterrupted_run_gives_the_expected_result(
    demo: Client, client: HttpClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.BATCH_CHUNK_ROWS = 3
    counter = StatementCounter(kill_at=None)

    batch = Batch.objects.get(pk=start_batch(demo, client, counter, monkeypatch))

    assert batch.status == Status.COMPLETE
    assert counts(batch) == EXPECTED_COUNTS
    assert values(demo) == EXPECTED_VALUES
    assert counter.seen > 10


def test_a_batch_killed_before_any_statement_resumes_without_loss(
    demo: Client, client: HttpClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.BATCH_CHUNK_ROWS = 3
    total = StatementCounter(kill_at=None)
    start_batch(demo, client, total, monkeypatch)
    Batch.objects.all().delete()

    for kill_at in range(total.seen):
        batch_id = start_batch(demo, client, StatementCounter(kill_at), monkeypatch)
        killed = Batch.objects.get(pk=batch_id)
        committed_changes: dict[str, str] = {}
        if killed.status == Status.INCOMPLETE:
            # Wipe what the dead worker committed: a committed chunk applied again would show.
            committed_changes = {
                pc_id: value
                for pc_id, value in values(demo).items()
                if value != EXISTING.get(pc_id)
            }
            Profile.objects.filter(client=demo, pc_id__in=committed_changes).update(attributes={})
            stall(batch_id, settings)
            [killed] = tasks.resume_stalled()
        resumed = killed

        where = f"kill before statement {kill_at} of {total.seen}"
        assert resumed.status == Status.COMPLETE, where
        assert counts(resumed) == EXPECTED_COUNTS, where
        assert BatchFailure.objects.filter(batch_id=batch_id).count() == 1, where
        expected = {
            pc_id: "" if pc_id in committed_changes else value
            for pc_id, value in EXPECTED_VALUES.items()
        }
        assert values(demo) == expected, where
        Batch.objects.filter(pk=batch_id).delete()
