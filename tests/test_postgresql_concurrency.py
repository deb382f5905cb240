"""What several web workers and task workers writing at once must never lose (PostgreSQL).

Each thread gets its own database connection, as separate gunicorn workers would; the
token test asks a separate, already running process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections
from django.test import Client as HttpClient
from django_tasks_db.models import DBTaskResult

from profiles.ingest import pipeline
from profiles.ingest.batches import Batch, Status
from profiles.models import Client, Profile, ProfileToken
from profiles.store import KeyKind
from tests.batches import batch_id_of, submit

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def all_at_once(jobs: list[Callable[[], object]]) -> None:
    """Run the jobs in threads released together; re-raise the first failure."""
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job: Callable[[], object]) -> None:
        try:
            barrier.wait()
            job()
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def values(profile: Profile) -> dict[str, str]:
    return {name: entry["value"] for name, entry in profile.attributes.items()}


def database_url_for_tests() -> str:
    """A DATABASE_URL naming the test database, for processes started by a test."""
    return "postgres://{USER}:{PASSWORD}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict)


def test_it_loses_no_attribute_when_single_updates_of_one_profile_race(demo: Client) -> None:
    pipeline.apply(
        demo.pk, KeyKind.PC_ID, [pipeline.Row(1, "p1", {"seed": "0"})], create_missing=True, now=NOW
    )

    def single_update(worker: int) -> Callable[[], object]:
        def run() -> None:
            for round_ in range(10):
                row = pipeline.Row(1, "p1", {f"w{worker}r{round_}": "x"})
                pipeline.apply(demo.pk, KeyKind.PC_ID, [row], create_missing=False)

        return run

    all_at_once([single_update(worker) for worker in range(6)])

    stored = values(Profile.objects.get(client=demo, pc_id="p1"))
    expected = {f"w{w}r{r}": "x" for w in range(6) for r in range(10)} | {"seed": "0"}
    assert stored == expected


def test_it_loses_no_attribute_when_two_batches_merge_the_same_profiles(demo: Client) -> None:
    ids = [f"u-{i}" for i in range(1500)]

    def batch(attribute: str, order: list[str]) -> Callable[[], object]:
        rows = [pipeline.Row(n, key, {attribute: key}) for n, key in enumerate(order)]
        return lambda: pipeline.apply(demo.pk, KeyKind.THIRD_PARTY_ID, rows, create_missing=True)

    # Opposite orders: taken naively, the two statements' row locks would deadlock.
    all_at_once([batch("colour", ids), batch("size", ids[::-1])])

    profiles = Profile.objects.filter(client=demo)
    assert profiles.count() == len(ids)
    for profile in profiles:
        assert values(profile) == {"colour": profile.third_party_id, "size": profile.third_party_id}


TOKEN_CHECKER = """
import sys
import django

django.setup()
from profiles.tokens import verification
from profiles.tokens.models import TokenRejected

for line in sys.stdin:
    client_id, candidate = line.split()
    try:
        verification.verify(int(client_id), candidate)
        print("accepted", flush=True)
    except TokenRejected as rejected:
        print(rejected.reason, flush=True)
"""


def test_it_refuses_a_regenerated_token_in_another_process_at_once(
    demo: Client, alice: User
) -> None:
    _, old_plaintext = ProfileToken.objects.issue(demo, expires_in_days=90, actor=alice)
    url = database_url_for_tests()
    checker = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", TOKEN_CHECKER],
        cwd=Path(__file__).resolve().parent.parent,
        env=os.environ | {"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "targetadmin.settings"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert checker.stdin is not None
    assert checker.stdout is not None

    def ask(candidate: str) -> str:
        assert checker.stdin is not None
        assert checker.stdout is not None
        checker.stdin.write(f"{demo.pk} {candidate}\n")
        checker.stdin.flush()
        return checker.stdout.readline().strip()

    try:
        assert ask(old_plaintext) == "accepted"
        _, new_plaintext = ProfileToken.objects.issue(demo, expires_in_days=90, actor=alice)
        assert ask(old_plaintext) == "invalid"
        assert ask(new_plaintext) == "accepted"
    finally:
        checker.stdin.close()
        checker.wait(timeout=30)


def test_two_workers_never_take_the_same_batch(
    demo: Client, client: HttpClient, settings: Any, tmp_path: Path
) -> None:
    # Batches wait in django-tasks-db's queue; each worker claims one with
    # SELECT … FOR UPDATE SKIP LOCKED and marks it running in the same transaction.
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    ids = [f"p{i}" for i in range(300)]
    batch_ids = []
    for n in range(6):
        body = "batch=pcId,batch" + str(n) + "\n" + "".join(f"{pc_id},{n}\n" for pc_id in ids)
        batch_ids.append(batch_id_of(submit(client, body)))
    assert DBTaskResult.objects.ready().count() == 6

    env = os.environ | {
        "DATABASE_URL": database_url_for_tests(),
        "TARGETADMIN_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "targetadmin.settings",
    }
    workers = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
            [
                sys.executable,
                "manage.py",
                "db_worker",
                "--batch",
                "--no-reload",
                "--no-startup-delay",
                "--interval",
                "0",
                "--worker-id",
                f"worker-{n}",
            ],
            cwd=Path(__file__).resolve().parent.parent,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n in range(2)
    ]
    for worker in workers:
        assert worker.wait(timeout=300) == 0

    tasks = list(DBTaskResult.objects.all())
    assert len(tasks) == 6
    for task in tasks:
        assert task.status == "SUCCESSFUL"
        assert len(task.worker_ids) == 1, f"task {task.id} was claimed by {task.worker_ids}"
    for batch in Batch.objects.filter(pk__in=batch_ids):
        assert batch.status == Status.COMPLETE
        assert batch.successful_updates == len(ids)
    every_batch = {f"batch{n}": str(n) for n in range(6)}
    for profile in Profile.objects.filter(client=demo):
        assert values(profile) == every_batch
