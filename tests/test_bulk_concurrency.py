"""Bulk submissions racing each other: one batch per Idempotency-Key, never past the rate limit.

Each thread sends its request through its own database connection, as separate gunicorn
workers would: on PostgreSQL to the test database, on SQLite to the test database copied to
a file (in WAL mode, as in production), since threads cannot write one in-memory database.
Every test runs on both (``.ci/with-postgresql`` for PostgreSQL).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections
from django.http import HttpResponse
from django.test import Client as HttpClient

from profiles.api import submissions
from profiles.ingest.batches import Batch, Status
from profiles.models import Client
from tests.batches import batch_id_of, stored_files, submit, values
from tests.fixtures import database_in_a_file

pytestmark = pytest.mark.django_db(transaction=True)

BULK = "/api/v1/clients/demo/profiles/bulk"
ROWS = "batch=thirdPartyId,tier\n" + "".join(f"u-{n},gold\n" for n in range(20))
# PostgreSQL's throwaway server takes 100 connections, for two workers; each thread holds one.
MAX_THREADS = 35


@pytest.fixture
def concurrent_database(django_db_blocker: Any, tmp_path: Path) -> Iterator[None]:
    """A database every thread reaches with a connection of its own."""
    if connection.vendor != "sqlite":
        yield
        return
    with database_in_a_file(django_db_blocker, tmp_path / "targetadmin.sqlite3"):
        yield


@pytest.fixture
def demo(concurrent_database: None) -> Client:
    return Client.objects.create(code="demo", name="Demo")


@pytest.fixture
def slow_submissions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each submission pauses between its early check and creating its batch, as an upload
    being read does, so racing submissions overlap there every time."""
    new_batch_id = submissions.new_batch_id

    def slowly(client: Client, now: datetime) -> str:
        time.sleep(0.1)
        return new_batch_id(client, now)

    monkeypatch.setattr(submissions, "new_batch_id", slowly)


def all_at_once(jobs: list[Callable[[], HttpResponse]]) -> list[HttpResponse]:
    """Run the jobs in at most ``MAX_THREADS`` threads released together; their answers."""
    threads = min(len(jobs), MAX_THREADS)
    barrier = threading.Barrier(threads)
    answers: list[HttpResponse | None] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(first: int) -> None:
        try:
            barrier.wait()
            for n in range(first, len(jobs), threads):
                answers[n] = jobs[n]()
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    return [answer for answer in answers if answer is not None]


def sender(way: str, **headers: str) -> Callable[[], HttpResponse]:
    """One submission of 20 profiles by ``way``: a v1 or v2 batch file, or JSON bulk."""
    if way in ("v1", "v2"):
        return lambda: submit(HttpClient(), ROWS, version=way, headers=headers)
    document = {
        "createMissing": True,
        "profiles": [{"thirdPartyId": f"u-{n}", "attributes": {"tier": "gold"}} for n in range(20)],
    }
    return lambda: HttpClient().post(
        BULK, data=json.dumps(document), content_type="application/json", headers=headers
    )


def named_batch(response: HttpResponse) -> str:
    if response["Content-Type"].startswith("application/json"):
        assert response.status_code in (200, 202), response.content
        return str(response.json()["batchId"])
    return batch_id_of(response)


def leftover_files(settings: Any) -> list[str]:
    return stored_files()


@pytest.mark.parametrize("way", ["v1", "v2", "json"])
@pytest.mark.usefixtures("slow_submissions")
def test_it_makes_one_batch_of_concurrent_submissions_with_one_idempotency_key(
    demo: Client, way: str, settings: Any
) -> None:
    answers = all_at_once([sender(way, **{"Idempotency-Key": "nightly"}) for _ in range(10)])

    batch = Batch.objects.get()
    assert {named_batch(answer) for answer in answers} == {batch.pk}
    assert batch.status == Status.COMPLETE
    assert not leftover_files(settings), "a losing upload left its file behind"


@pytest.mark.usefixtures("slow_submissions")
def test_it_accepts_exactly_the_rate_limit_of_concurrent_submissions(
    demo: Client, settings: Any
) -> None:
    settings.BULK_SUBMISSIONS_PER_MINUTE = 50
    answers = all_at_once([sender(("v1", "v2", "json")[n % 3]) for n in range(70)])

    accepted = [answer for answer in answers if answer.status_code == 200]
    refused = [answer for answer in answers if answer.status_code == 429]
    assert (len(accepted), len(refused)) == (50, 20)
    assert all(1 <= int(answer["Retry-After"]) <= 61 for answer in refused)
    assert Batch.objects.count() == 50
    assert {named_batch(answer) for answer in accepted} == set(
        Batch.objects.values_list("pk", flat=True)
    )
    assert not leftover_files(settings), "a refused upload left its file behind"
    assert values(demo, third_party_id="u-0") == {"tier": "gold"}


@pytest.mark.usefixtures("slow_submissions")
def test_it_answers_replays_of_a_known_key_while_new_submissions_are_refused(
    demo: Client, settings: Any
) -> None:
    settings.BULK_SUBMISSIONS_PER_MINUTE = 1
    original = named_batch(sender("json", **{"Idempotency-Key": "k"})())
    replays = [sender(way, **{"Idempotency-Key": "k"}) for way in ("v1", "v2", "json") * 3]
    answers = all_at_once(replays + [sender(way) for way in ("v1", "v2", "json") * 3])

    assert [named_batch(answer) for answer in answers[:9]] == [original] * 9
    assert [answer.status_code for answer in answers[9:]] == [429] * 9
    assert Batch.objects.count() == 1
