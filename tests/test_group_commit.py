"""Group commit of single updates on SQLite (docs/operations.md#group-commit).

Updates that arrive while a transaction commits join the next one. Each caller is answered
only once its own update has committed, with its own answer: an update that fails fails
alone, a database fault fails the whole group and writes nothing. On PostgreSQL each
update stays one statement of its own.

The groups are made on purpose: another process holds the writer lock while the first
update waits to begin its transaction, and the updates sent meanwhile queue behind it; they
are the next group. The database is a file, so that a separate connection reads only what
was committed.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from adapters.sqlite.writers import WriterLock, lock_path
from profiles.ingest import single
from profiles.ingest.group_commit import GroupCommitter
from profiles.models import Client, Profile
from profiles.rules import faults
from profiles.rules.errors import ErrorCode, ProductError
from profiles.rules.limits import MAX_VALUE_LENGTH
from profiles.store import KeyKind

pytestmark = pytest.mark.django_db(transaction=True)

QUEUE_SECONDS = 0.1  # time for a started thread to queue its update


@pytest.fixture
def patient(file_database: Path) -> Path:
    """The file database, with a busy timeout longer than the tests hold the lock."""
    connection.close()
    connection.settings_dict["OPTIONS"]["timeout"] = 10
    return file_database


@pytest.fixture
def demo(file_database: Path) -> Client:
    client = Client.objects.create(code="demo", name="Demo")
    for pc_id in ("alice", "bob", "carol"):
        Profile.objects.create(client=client, pc_id=pc_id, attributes={})
    return client


class Caller(threading.Thread):
    """One caller, on a thread (and database connection) of its own, as a gunicorn thread."""

    def __init__(self, call: Callable[[], object]) -> None:
        super().__init__()
        self.call = call
        self.result: object = None
        self.error: BaseException | None = None
        self.answered_at = 0.0

    def run(self) -> None:
        try:
            self.result = self.call()
        except BaseException as error:
            self.error = error
        finally:
            self.answered_at = time.monotonic()
            connections.close_all()


def in_one_group(database: Path, calls: list[Callable[[], object]]) -> list[Caller]:
    """Run ``calls`` in this order as one group, behind a first call that leads alone."""
    other_process = WriterLock(lock_path(str(database)))
    other_process.acquire(timeout=1)
    callers = [Caller(call) for call in calls]
    try:
        for caller in callers:
            caller.start()
            time.sleep(QUEUE_SECONDS)
    finally:
        other_process.release()
    for caller in callers:
        caller.join()
    return callers


def update(client: Client, pc_id: str, attributes: dict[str, str]) -> Callable[[], str]:
    return lambda: single.apply(client, KeyKind.PC_ID, pc_id, attributes)


def committed(database: Path, pc_id: str) -> set[str]:
    """The attribute names of the profile as another connection sees them."""
    with closing(sqlite3.connect(database)) as reader:
        [text] = reader.execute(
            "SELECT json(attributes) FROM profiles_profile WHERE pc_id = ?", [pc_id]
        ).fetchone()
    return set(json.loads(text))


def test_it_answers_a_failing_update_alone_while_its_neighbours_commit(
    patient: Path, demo: Client
) -> None:
    first, alice, missing, too_long, bob = in_one_group(
        patient,
        [
            update(demo, "carol", {"first": "1"}),
            update(demo, "alice", {"tier": "gold"}),
            update(demo, "nobody", {"tier": "gold"}),
            update(demo, "alice", {"tier": "x" * (MAX_VALUE_LENGTH + 1), "note": "n"}),
            update(demo, "bob", {"tier": "silver"}),
        ],
    )

    assert (first.error, alice.error, bob.error) == (None, None, None)
    assert (alice.result, bob.result) == ("alice", "bob")
    assert isinstance(missing.error, ProductError)
    assert missing.error.code is ErrorCode.NOT_FOUND
    assert isinstance(too_long.error, ProductError)
    assert too_long.error.code is ErrorCode.VALUE_TOO_LONG
    assert committed(patient, "alice") == {"tier"}
    assert committed(patient, "bob") == {"tier"}


def test_work_that_fails_after_writing_is_rolled_back_alone(patient: Path, demo: Client) -> None:
    group = GroupCommitter()

    def write(pc_id: str, name: str, fail: bool = False) -> Callable[[], str]:
        def work() -> str:
            pc_id_of = single.apply(demo, KeyKind.PC_ID, pc_id, {name: "v"})
            if fail:
                raise ZeroDivisionError(name)
            return pc_id_of

        return lambda: group.run(work, patience=10)

    first, alice, failing, bob = in_one_group(
        patient,
        [write("carol", "first"), write("alice", "a"), write("bob", "f", True), write("bob", "b")],
    )

    assert (first.result, alice.result, bob.result) == ("carol", "alice", "bob")
    assert isinstance(failing.error, ZeroDivisionError)
    assert committed(patient, "alice") == {"a"}
    assert committed(patient, "bob") == {"b"}


def test_the_others_run_again_without_work_that_breaks_the_transaction(
    patient: Path, demo: Client
) -> None:
    group = GroupCommitter()
    runs: list[str] = []

    def write(pc_id: str, name: str) -> Callable[[], str]:
        def work() -> str:
            runs.append(name)
            return single.apply(demo, KeyKind.PC_ID, pc_id, {name: "v"})

        return lambda: group.run(work, patience=10)

    def break_the_transaction() -> None:
        runs.append("breaks")
        single.apply(demo, KeyKind.PC_ID, "carol", {"broken": "v"})
        connection.connection.execute("ROLLBACK")  # its savepoint is gone with it
        raise ZeroDivisionError

    first, alice, breaking, bob = in_one_group(
        patient,
        [
            write("carol", "first"),
            write("alice", "a"),
            lambda: group.run(break_the_transaction, patience=10),
            write("bob", "b"),
        ],
    )

    assert (first.result, alice.result, bob.result) == ("carol", "alice", "bob")
    assert isinstance(breaking.error, ZeroDivisionError)
    assert committed(patient, "alice") == {"a"}
    assert committed(patient, "bob") == {"b"}
    assert committed(patient, "carol") == {"first"}
    assert runs == ["first", "a", "breaks", "a", "b"]


def test_a_caller_is_answered_only_once_its_group_has_committed(
    patient: Path, demo: Client
) -> None:
    group = GroupCommitter()
    seen_when_answered: dict[str, set[str]] = {}

    def caller(pc_id: str, name: str, then_wait: float = 0.0) -> Callable[[], None]:
        def work() -> str:
            pc_id_of = single.apply(demo, KeyKind.PC_ID, pc_id, {name: "v"})
            time.sleep(then_wait)  # the transaction stays open meanwhile
            return pc_id_of

        def call() -> None:
            group.run(work, patience=10)
            seen_when_answered[name] = committed(patient, pc_id)

        return call

    in_one_group(
        patient,
        [
            caller("carol", "first"),
            caller("alice", "leader"),
            caller("bob", "follower"),
            caller("carol", "slow", then_wait=0.3),
        ],
    )

    assert "leader" in seen_when_answered["leader"]
    assert "follower" in seen_when_answered["follower"]
    assert "slow" in seen_when_answered["slow"]


def test_a_busy_database_fails_every_update_of_the_group_and_writes_none(
    file_database: Path, demo: Client
) -> None:
    callers = [Caller(update(demo, pc_id, {"tier": "gold"})) for pc_id in ("alice", "bob")]
    callers += [Caller(update(demo, "carol", {f"c{n}": "1"})) for n in range(3)]
    other_process = WriterLock(lock_path(str(file_database)))
    other_process.acquire(timeout=1)
    try:
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
    finally:
        other_process.release()

    for caller in callers:
        fault = (
            caller.error
            if isinstance(caller.error, ProductError)
            else faults.fault_error(caller.error)
            if caller.error is not None
            else None
        )
        assert fault is not None
        assert fault.code is ErrorCode.DATABASE_BUSY
    assert committed(file_database, "alice") == set()
    assert committed(file_database, "carol") == set()


@pytest.fixture
def any_database(request: pytest.FixtureRequest) -> None:
    """A file on SQLite, so that each thread has a connection of its own; PostgreSQL as is."""
    if connection.vendor == "sqlite":
        request.getfixturevalue("patient")


@pytest.mark.usefixtures("any_database")
def test_concurrent_single_updates_of_one_profile_lose_no_attribute() -> None:
    client = Client.objects.create(code="demo", name="Demo")
    Profile.objects.create(client=client, pc_id="p1", attributes={})
    barrier = threading.Barrier(8)

    def send(sender: int) -> Callable[[], None]:
        def call() -> None:
            barrier.wait()
            for number in range(20):
                single.apply(client, KeyKind.PC_ID, "p1", {f"s{sender}n{number}": "x"})

        return call

    callers = [Caller(send(sender)) for sender in range(8)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()

    assert [caller.error for caller in callers] == [None] * 8
    stored = Profile.objects.get(client=client, pc_id="p1").attributes
    assert set(stored) == {f"s{s}n{n}" for s in range(8) for n in range(20)}


def statements(run: Callable[[], object]) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        run()
    return [query["sql"] for query in captured.captured_queries]


@pytest.mark.usefixtures("any_database")
@pytest.mark.parametrize("switch", [True, False])
def test_it_groups_on_sqlite_with_the_switch_on_and_never_on_postgresql(
    settings: Any, switch: bool
) -> None:
    settings.SINGLE_UPDATE_GROUP_COMMIT = switch
    client = Client.objects.create(code="demo", name="Demo")
    Profile.objects.create(client=client, pc_id="p1", attributes={})

    sent = statements(lambda: single.apply(client, KeyKind.PC_ID, "p1", {"tier": "gold"}))

    grouped = switch and connection.vendor == "sqlite"
    assert any(sql.startswith("SAVEPOINT") for sql in sent) is grouped
    assert Profile.objects.get(pc_id="p1").attributes["tier"]["value"] == "gold"
