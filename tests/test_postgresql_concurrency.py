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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.db import connection, connections
from django.test import Client as HttpClient
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from profiles.access.actors import SYSTEM, Actor
from profiles.access.provider_roles import apply_roles, signed_in_user
from profiles.ingest import pipeline
from profiles.ingest.batches import Batch, Status
from profiles.models import AuditEvent, Client, Profile, ProfileToken, Role, TokenReminder
from profiles.store import KeyKind
from profiles.tokens import reminders, verification
from profiles.tokens.models import TokenRejected
from tests.batches import batch_id_of, submit
from tests.profile_api import require_authentication

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
    _, old_plaintext = ProfileToken.objects.issue(
        demo, expires_in_days=90, actor=Actor.person(alice)
    )
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
        _, new_plaintext = ProfileToken.objects.issue(
            demo, expires_in_days=90, actor=Actor.person(alice)
        )
        assert ask(old_plaintext) == "invalid"
        assert ask(new_plaintext) == "accepted"
    finally:
        checker.stdin.close()
        checker.wait(timeout=30)


class TokenChecker:
    """A separate, already running process asking the one token check, as another worker."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", TOKEN_CHECKER],
            cwd=Path(__file__).resolve().parent.parent,
            env=os.environ
            | {
                "DATABASE_URL": database_url_for_tests(),
                "DJANGO_SETTINGS_MODULE": "targetadmin.settings",
            },
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, client: Client, candidate: str) -> str:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(f"{client.pk} {candidate}\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def test_both_tokens_work_during_grace_and_the_old_one_fails_at_once_in_another_process(
    demo: Client, alice: User
) -> None:
    _, first = ProfileToken.objects.issue(demo, expires_in_days=90, actor=Actor.person(alice))
    checker = TokenChecker()
    try:
        assert checker.ask(demo, first) == "accepted"
        _, second = ProfileToken.objects.issue(
            demo, expires_in_days=90, actor=Actor.person(alice), previous_token_grace_seconds=3600
        )
        assert (checker.ask(demo, first), checker.ask(demo, second)) == ("accepted", "accepted")
        ProfileToken.objects.revoke_previous(demo, actor=Actor.person(alice))  # Revoke now
        assert (checker.ask(demo, first), checker.ask(demo, second)) == ("invalid", "accepted")

        _, third = ProfileToken.objects.issue(
            demo, expires_in_days=90, actor=Actor.person(alice), previous_token_grace_seconds=3600
        )
        assert checker.ask(demo, second) == "accepted"
        # The grace period runs out: nobody has to record it for the token to stop.
        ProfileToken.objects.in_grace().update(grace_until=timezone.now())
        assert (checker.ask(demo, second), checker.ask(demo, third)) == ("invalid", "accepted")
    finally:
        checker.close()


def test_at_most_one_token_is_in_grace_however_many_re_generations_race(
    demo: Client, alice: User
) -> None:
    ProfileToken.objects.issue(demo, expires_in_days=90, actor=Actor.person(alice))
    issued: list[str] = []

    def regenerate() -> None:
        _, plaintext = ProfileToken.objects.issue(
            demo, expires_in_days=90, actor=Actor.person(alice), previous_token_grace_seconds=3600
        )
        issued.append(plaintext)

    all_at_once([regenerate] * 8)

    tokens = ProfileToken.objects.filter(client=demo)
    assert tokens.current().count() == 1
    assert tokens.in_grace().count() == 1
    assert tokens.unrevoked().count() == 2
    working = [p for p in issued if _works(demo, p)]
    assert len(issued) == 8
    assert len(working) == 2  # the last one, and the one before it in its grace period
    assert AuditEvent.objects.filter(action=AuditEvent.Action.GRACE_STARTED).count() == 8
    assert AuditEvent.objects.filter(action=AuditEvent.Action.GRACE_ENDED).count() == 7


def _works(client: Client, candidate: str) -> bool:
    try:
        verification.verify(client.pk, candidate)
    except TokenRejected:
        return False
    return True


def test_last_use_is_written_once_a_minute_under_concurrent_calls(
    demo: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_authentication(demo)
    token, plaintext = ProfileToken.objects.issue(demo, expires_in_days=90, actor=SYSTEM)
    record_use = verification.record_use
    writes: list[bool] = []

    def counted(*args: Any) -> bool:
        written = record_use(*args)
        writes.append(written)
        return written

    monkeypatch.setattr(verification, "record_use", counted)
    start = timezone.now()

    def calls() -> None:
        for n in range(25):
            at = start + timedelta(seconds=n)  # all within the minute
            verification.authenticate("demo", [plaintext], at, address="203.0.113.5")

    all_at_once([calls] * 8)

    assert len(writes) == 200
    assert writes.count(True) == 1
    token.refresh_from_db()
    assert token.last_used_from == "203.0.113.5"


def test_two_sweeps_at_once_send_each_reminder_once(demo: Client, alice: User) -> None:
    alice.email = "alice@demo.example"
    alice.save()
    token, _ = ProfileToken.objects.issue(demo, expires_in_days=90, actor=SYSTEM)
    moment = token.expires_at - timedelta(days=6)
    mail.outbox = []

    all_at_once([lambda: reminders.sweep(moment)] * 4)

    assert [m.to for m in mail.outbox] == [["alice@demo.example"]]
    assert TokenReminder.objects.count() == 1
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REMINDER_SENT).count() == 1


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


def test_two_first_sign_ins_of_one_person_at_once_make_one_user() -> None:
    claims = {"sub": "7f3a", "preferred_username": "carol", "email": "carol@demo.example"}
    users: list[User] = []

    all_at_once([lambda: users.append(signed_in_user("https://idp.example", claims))] * 4)

    assert len({user.pk for user in users}) == 1
    assert User.objects.filter(username="carol").count() == 1


def test_two_sign_ins_of_one_person_at_once_grant_the_role_once(demo: Client) -> None:
    carol = User.objects.create_user("carol")

    all_at_once([lambda: apply_roles(carol, {"demo": Role.APPROVER}, "127.0.0.1")] * 4)

    assert list(carol.memberships.values_list("role", flat=True)) == [Role.APPROVER]
    assert AuditEvent.objects.filter(action=AuditEvent.Action.ROLE_GRANTED).count() == 1
