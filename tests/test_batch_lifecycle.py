"""Batches over time: idempotency, the rate limit, resuming after a dead worker, pruning."""

from __future__ import annotations

import time
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client as HttpClient
from django.utils import timezone

from profiles import tasks
from profiles.api import submissions
from profiles.ingest import processing
from profiles.ingest.batches import Batch, BatchFailure, Status
from profiles.ingest.storage import batch_files, open_at
from profiles.models import Client, Profile
from tests.batches import batch_id_of, refusal, status, stored_files, submit, values

ROWS = "batch=pcId,a\n" + "".join(f"p{n},v{n}\n" for n in range(1, 8)) + "bad/,x,y\n"


def test_it_returns_the_original_batch_for_a_repeated_idempotency_key(
    demo: Client, other_client: Client, client: HttpClient
) -> None:
    first = batch_id_of(submit(client, ROWS, headers={"idempotency-key": "k-1"}))
    again = batch_id_of(submit(client, "batch=pcId,a\nz,1\n", headers={"idempotency-key": "k-1"}))
    assert again == first
    assert not Profile.objects.filter(pc_id="z").exists()
    elsewhere = batch_id_of(submit(client, ROWS, client="acme", headers={"idempotency-key": "k-1"}))
    assert elsewhere != first
    other_key = batch_id_of(submit(client, ROWS, headers={"idempotency-key": "k-2"}))
    assert other_key != first


def test_it_forgets_an_idempotency_key_after_24_hours(demo: Client, client: HttpClient) -> None:
    first = batch_id_of(submit(client, ROWS, headers={"idempotency-key": "k"}))
    Batch.objects.filter(pk=first).update(
        created_at=timezone.now() - timedelta(hours=24, seconds=1)
    )
    second = batch_id_of(submit(client, ROWS, headers={"idempotency-key": "k"}))
    assert second != first
    assert batch_id_of(submit(client, ROWS, headers={"idempotency-key": "k"})) == second
    old = Batch.objects.get(pk=first)
    assert (old.idempotency_key, old.idempotency_key_expired) == ("k", True)  # kept as sent


def test_it_answers_with_the_winners_batch_when_a_racer_reaches_the_database_second(
    demo: Client, client: HttpClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database holds a live key once per client, even for a submission that checked
    for it before the winner's batch existed."""
    first = batch_id_of(submit(client, ROWS, headers={"idempotency-key": "k"}))
    monkeypatch.setattr(submissions, "admit", lambda client, key, now: None)  # saw no batch
    assert batch_id_of(submit(client, ROWS, headers={"idempotency-key": "k"})) == first
    assert Batch.objects.count() == 1
    assert stored_files() == [], "the losing upload left its file behind"


def test_it_lets_a_corrected_retry_use_the_key_of_a_refused_request(
    demo: Client, client: HttpClient, settings: Any
) -> None:
    """A request refused whole claims no key (Stripe's rule), so its corrected retry applies."""
    assert submit(client, "pcId,a\np1,x\n", headers={"idempotency-key": "k"}).status_code == 400
    settings.BULK_SUBMISSIONS_PER_MINUTE = 1
    batch_id_of(submit(client, ROWS))
    assert submit(client, ROWS, headers={"idempotency-key": "k"}).status_code == 429
    Batch.objects.update(created_at=timezone.now() - timedelta(seconds=61))
    retried = batch_id_of(submit(client, ROWS, headers={"idempotency-key": "k"}))
    assert Batch.objects.get(pk=retried).idempotency_key == "k"
    assert values(demo, pc_id="p1") == {"a": "v1"}


def test_it_refuses_an_unprintable_or_overlong_idempotency_key(
    demo: Client, client: HttpClient
) -> None:
    response = submit(client, ROWS, headers={"idempotency-key": "k" * 256})
    assert response.status_code == 400
    assert "Idempotency-Key" in refusal(response)


def test_it_limits_bulk_submissions_per_client_per_minute(
    demo: Client, other_client: Client, client: HttpClient, settings: Any
) -> None:
    settings.BULK_SUBMISSIONS_PER_MINUTE = 2
    for _ in range(2):
        assert submit(client, ROWS).status_code == 200
    refused = submit(client, ROWS)
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 61
    assert refusal(refused).startswith("Too many bulk submissions: at most 2 a minute")
    assert submit(client, ROWS, client="acme").status_code == 200  # per client
    json_refused = client.post(
        "/api/v1/clients/demo/profiles/bulk",
        data=b'{"profiles": []}',
        content_type="application/json",
    )
    assert json_refused.status_code == 429
    Batch.objects.update(created_at=timezone.now() - timedelta(seconds=61))
    assert submit(client, ROWS).status_code == 200


def test_it_replays_an_idempotent_submission_even_past_the_rate_limit(
    demo: Client, client: HttpClient, settings: Any
) -> None:
    settings.BULK_SUBMISSIONS_PER_MINUTE = 1
    first = batch_id_of(submit(client, ROWS, headers={"idempotency-key": "k"}))
    assert batch_id_of(submit(client, ROWS, headers={"idempotency-key": "k"})) == first


class WorkerKilled(BaseException):
    """Stands for the worker process dying: nothing after it runs, nothing is caught."""


def kill_worker_after(monkeypatch: pytest.MonkeyPatch, chunks: int) -> None:
    real_apply = processing.apply
    applied = 0

    def apply(batch: Batch, chunk: processing.Chunk) -> Any:
        nonlocal applied
        if applied == chunks:
            raise WorkerKilled
        applied += 1
        return real_apply(batch, chunk)

    monkeypatch.setattr(processing, "apply", apply)


def stall(batch_id: str, settings: Any) -> None:
    past = timezone.now() - timedelta(seconds=settings.BATCH_STALL_SECONDS + 1)
    Batch.objects.filter(pk=batch_id).update(updated_at=past)


def test_it_resumes_a_batch_whose_worker_died_at_the_next_unapplied_chunk(
    demo: Client, client: HttpClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.BATCH_CHUNK_ROWS = 3
    kill_worker_after(monkeypatch, chunks=2)
    batch_id = batch_id_of(submit(client, ROWS))
    halfway = status(client, batch_id)
    assert (halfway["status"], halfway["consumedCount"]) == ("incomplete", "6")
    assert Profile.objects.count() == 6
    monkeypatch.undo()
    Profile.objects.filter(pc_id="p1").update(attributes={})  # a re-applied chunk would show
    stall(batch_id, settings)
    done = status(client, batch_id)  # reading a stalled batch's status resumes it
    assert done == {
        "batchId": batch_id,
        "status": "complete",
        "batchSize": "8",
        "consumedCount": "8",
        "successfulUpdates": "7",
        "profilesNotFound": "0",
        "failedUpdates": "1",
        "profiles": [
            {
                "id": "bad/",
                "status": "failed",
                "message": "Line 9: 3 cells where the header has 2 columns",
            }
        ],
    }
    assert values(demo, pc_id="p1") == {}
    assert values(demo, pc_id="p7") == {"a": "v7"}
    assert Batch.objects.get(pk=batch_id).attempts == 2


def test_it_does_not_resume_a_batch_that_is_still_making_progress(
    demo: Client, client: HttpClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.BATCH_CHUNK_ROWS = 3
    kill_worker_after(monkeypatch, chunks=1)
    batch_id = batch_id_of(submit(client, ROWS))
    monkeypatch.undo()
    assert status(client, batch_id)["status"] == "incomplete"
    assert tasks.resume_stalled() == []


def test_it_marks_a_batch_stuck_once_its_attempts_are_used_up(
    demo: Client, client: HttpClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.BATCH_CHUNK_ROWS = 3
    settings.BATCH_MAX_ATTEMPTS = 2
    kill_worker_after(monkeypatch, chunks=0)
    batch_id = batch_id_of(submit(client, ROWS))
    for expected in ("incomplete", "stuck"):
        stall(batch_id, settings)
        out = StringIO()
        call_command("resume_batches", stdout=out)
        assert Batch.objects.get(pk=batch_id).status == expected
    assert out.getvalue().strip() == "Resumed 0 batches; 1 stuck."
    assert status(client, batch_id)["status"] == "stuck"


def test_it_marks_a_batch_stuck_when_its_file_is_gone(
    demo: Client, client: HttpClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    kill_worker_after(monkeypatch, chunks=0)
    batch_id = batch_id_of(submit(client, ROWS))
    monkeypatch.undo()
    batch_files().delete(Batch.objects.get(pk=batch_id).file_name)
    stall(batch_id, settings)
    assert status(client, batch_id)["status"] == "stuck"


def test_it_never_applies_a_chunk_twice_when_two_workers_race(
    demo: Client, client: HttpClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.BATCH_CHUNK_ROWS = 3
    kill_worker_after(monkeypatch, chunks=1)
    batch_id = batch_id_of(submit(client, ROWS))
    monkeypatch.undo()
    slow = Batch.objects.get(pk=batch_id)  # a worker that read the rows before the others
    with open_at(slow.file_name, slow.resume_offset) as handle:
        rows_read_by_slow = list(processing.stored_chunks(slow, settings.BATCH_CHUNK_ROWS, handle))
    tasks.process_batch.call(batch_id)  # another worker finishes the batch meanwhile
    Profile.objects.filter(pc_id="p4").update(attributes={})
    processing.process(slow, rows_read_by_slow)
    assert values(demo, pc_id="p4") == {}  # the slow worker's chunk was rolled back
    finished = Batch.objects.get(pk=batch_id)
    assert (finished.status, finished.consumed_count, finished.failed_updates) == (
        Status.COMPLETE,
        8,
        1,
    )
    assert BatchFailure.objects.count() == 1


def test_it_prunes_batches_past_the_retention_period(
    demo: Client, client: HttpClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.BATCH_RETENTION_DAYS = 30
    kill_worker_after(monkeypatch, chunks=0)
    old = batch_id_of(submit(client, ROWS))
    monkeypatch.undo()
    recent = batch_id_of(submit(client, ROWS))
    Batch.objects.filter(pk=old).update(created_at=timezone.now() - timedelta(days=31))
    old_file = Batch.objects.get(pk=old).file_name
    assert batch_files().exists(old_file)
    out = StringIO()
    call_command("prune_batches", stdout=out)
    assert out.getvalue().strip() == "Deleted 1 batches."
    assert list(Batch.objects.values_list("pk", flat=True)) == [recent]
    assert not batch_files().exists(old_file)


def test_it_sizes_each_chunk_so_that_its_transaction_lasts_about_batch_chunk_milliseconds(
    demo: Client, client: HttpClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk's transaction holds SQLite's one write lock: single updates wait behind it."""
    settings.BATCH_CHUNK_ROWS = 10_000
    settings.BATCH_CHUNK_MILLISECONDS = 20
    sizes: list[int] = []
    really_apply = processing.apply

    def slow_apply(batch: Batch, chunk: processing.Chunk) -> Any:
        rows = sum(len(run) for _, run in chunk.runs)
        sizes.append(rows)
        time.sleep(rows * 0.000_02)  # 20 µs a row: 1,000 rows fill the 20 ms
        return really_apply(batch, chunk)

    monkeypatch.setattr(processing, "apply", slow_apply)

    batch_id = batch_id_of(
        submit(client, "batch=pcId,a\n" + "".join(f"p{n},v\n" for n in range(5000)))
    )

    done = status(client, batch_id)
    assert (done["status"], done["successfulUpdates"]) == ("complete", "5000")
    assert sum(sizes) == 5000
    assert len(sizes) >= 5
    assert max(sizes) <= 2_000  # about 20 ms worth, never the 10,000 rows it may hold
    assert min(sizes[:-1]) >= processing.FEWEST_PACED_ROWS
