"""SQLite writers queue one after another (docs/operations.md#sqlite-writers).

Every writer takes the writer lock first: threads of a process on a lock of their own, and
processes on an ``flock`` of ``<database>-writers``. A waiter is let in the moment the lock
is released, instead of sleeping in SQLite's busy handler; a wait past the busy timeout
fails as a busy database does (503); a process that dies holding the lock frees it.
A second ``WriterLock`` of the same file stands for another process: it has a descriptor of
its own, and ``flock`` tells descriptors apart.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connection, connections, transaction
from django.db.backends.signals import connection_created
from django.db.models import CharField, F, Func
from django.test import Client as HttpClient

from adapters.sqlite.writers import WriterBusy, WriterLock, lock_path
from profiles.ingest import pipeline
from profiles.models import Client, Profile
from profiles.rules import faults
from profiles.store import KeyKind
from tests.fixtures import BUSY_TIMEOUT_SECONDS

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def held(lock: WriterLock) -> Iterator[None]:
    lock.acquire(timeout=1)
    try:
        yield
    finally:
        lock.release()


def is_free(path: str) -> bool:
    """Whether another process could take the writer lock of ``path`` right now."""
    other = WriterLock(path)
    try:
        other.acquire(timeout=0.01)
    except WriterBusy:
        return False
    other.release()
    return True


def seconds_from_release_to_let_in(path: str) -> float:
    holder, waiter = WriterLock(path), WriterLock(path)
    holder.acquire(timeout=1)
    let_in: list[float] = []
    thread = threading.Thread(target=lambda: (waiter.acquire(5), let_in.append(time.monotonic())))
    thread.start()
    time.sleep(0.3)
    assert let_in == []

    released = time.monotonic()
    holder.release()
    thread.join()
    waiter.release()
    return let_in[0] - released


def test_a_waiting_writer_is_let_in_the_moment_the_lock_is_released(tmp_path: Path) -> None:
    path = str(tmp_path / "db-writers")
    # SQLite's busy handler would sleep on in steps of up to 100 ms. The best of three keeps
    # a thread scheduled late on a busy machine from reading as a waiter that slept.
    assert min(seconds_from_release_to_let_in(path) for _ in range(3)) < 0.05


def test_a_writer_that_waits_past_the_busy_timeout_gives_up_as_a_busy_database(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "db-writers")
    holder, waiter = WriterLock(path), WriterLock(path)

    with held(holder), pytest.raises(WriterBusy) as raised:
        waiter.acquire(timeout=0.2)

    assert raised.value.sqlite_errorname == "SQLITE_BUSY"
    # The wait it gave up on lets go of the lock once granted: it is free again.
    time.sleep(0.1)
    assert is_free(path)
    waiter.acquire(timeout=1)
    waiter.release()


def test_the_writers_of_one_process_pass_it_on_before_another_process_gets_it(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "db-writers")
    here, elsewhere = WriterLock(path, hand_over_seconds=60), WriterLock(path)
    order: list[str] = []

    def write(lock: WriterLock, name: str) -> None:
        lock.acquire(timeout=5)
        order.append(name)
        time.sleep(0.02)
        lock.release()

    here.acquire(timeout=1)
    threads = [threading.Thread(target=write, args=(here, f"here-{n}")) for n in range(3)]
    threads.append(threading.Thread(target=write, args=(elsewhere, "elsewhere")))
    for thread in threads:
        thread.start()
        time.sleep(0.05)  # all four are waiting before the first release
    here.release()
    for thread in threads:
        thread.join()

    assert sorted(order[:3]) == ["here-0", "here-1", "here-2"]
    assert order[3] == "elsewhere"
    assert is_free(path)


def test_a_writer_that_gives_up_waiting_leaves_nothing_locked(tmp_path: Path) -> None:
    path = str(tmp_path / "db-writers")
    lock = WriterLock(path, hand_over_seconds=60)
    lock.acquire(timeout=1)
    gave_up: list[BaseException] = []

    def wait_briefly() -> None:
        try:
            lock.acquire(timeout=0.1)
        except WriterBusy as busy:
            gave_up.append(busy)

    thread = threading.Thread(target=wait_briefly)
    thread.start()
    thread.join()
    lock.release()

    assert len(gave_up) == 1
    assert is_free(path)


def test_a_process_that_dies_holding_the_lock_frees_it(tmp_path: Path) -> None:
    path = str(tmp_path / "db-writers")
    script = (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({path!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen(  # noqa: S603 - the test's own script
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "held\n"
    assert not is_free(path)

    child.kill()
    child.wait()

    assert is_free(path)


# The backend: which statements take it -----------------------------------------------------


def writer_lock_of(database: Path) -> str:
    return lock_path(str(database))


def test_a_transaction_holds_the_writer_lock_until_it_commits_or_rolls_back(
    file_database: Path,
) -> None:
    path = writer_lock_of(file_database)

    with transaction.atomic():
        Client.objects.create(code="demo", name="Demo")
        assert not is_free(path)
    assert is_free(path)

    held_inside: list[bool] = []

    def create_then_fail() -> None:
        with transaction.atomic():
            Client.objects.create(code="acme", name="Acme")
            held_inside.append(not is_free(path))
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        create_then_fail()
    assert held_inside == [True]
    assert is_free(path)
    assert list(Client.objects.values_list("code", flat=True)) == ["demo"]


def test_a_write_outside_a_transaction_holds_it_for_its_statement_and_a_read_never_does(
    file_database: Path,
) -> None:
    path = writer_lock_of(file_database)
    Client.objects.create(code="demo", name="Demo")
    seen: list[bool] = []

    def probe(value: str) -> str:
        """Called by SQLite while the statement runs: is the lock free then?"""
        seen.append(is_free(path))
        return value

    connection.ensure_connection()
    connection.connection.create_function("probe", 1, probe)
    probed = Func(F("name"), function="probe", output_field=CharField())

    Client.objects.filter(code="demo").update(name=probed)  # autocommit: one statement
    assert seen == [False]
    assert is_free(path)

    list(Client.objects.annotate(probed=probed))
    assert seen == [False, True]


def test_an_update_queued_behind_another_process_past_the_busy_timeout_is_answered_503(
    file_database: Path,
) -> None:
    client = Client.objects.create(code="demo", name="Demo")
    Profile.objects.create(client=client, pc_id="p1", attributes={})
    other_process = WriterLock(writer_lock_of(file_database))

    with held(other_process):
        response = HttpClient().get("/m2/demo/profile/update?mboxPC=p1&profile.tier=gold")

    assert response.status_code == 503
    assert response["Retry-After"] == str(faults.BUSY_RETRY_AFTER_SECONDS)
    assert Profile.objects.get(pc_id="p1").attributes == {}
    assert (
        HttpClient().get("/m2/demo/profile/update?mboxPC=p1&profile.tier=gold").status_code == 200
    )


def test_the_busy_error_is_the_one_the_fault_mapping_knows(file_database: Path) -> None:
    other_process = WriterLock(writer_lock_of(file_database))

    with held(other_process), pytest.raises(OperationalError) as raised, transaction.atomic():
        pass

    assert faults.is_database_busy(raised.value)
    assert raised.value.__cause__ is not None
    assert f"{BUSY_TIMEOUT_SECONDS:g} s" in str(raised.value)


@pytest.fixture
def no_busy_handler(file_database: Path) -> Iterator[None]:
    """SQLite's own busy timeout at 0: any two writers meeting in SQLite fail at once."""

    def no_waiting(connection: Any, **_: Any) -> None:
        connection.connection.execute("PRAGMA busy_timeout = 0")

    connection_created.connect(no_waiting)
    connection.close()
    connection.settings_dict["OPTIONS"]["timeout"] = 10  # the writer lock's wait
    try:
        yield
    finally:
        connection_created.disconnect(no_waiting)
        connection.close()


def test_concurrent_writers_never_meet_in_sqlite_and_lose_no_attribute(
    file_database: Path, no_busy_handler: None
) -> None:
    client = Client.objects.create(code="demo", name="Demo")
    Profile.objects.create(client=client, pc_id="p1", attributes={})
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            barrier.wait()
            for number in range(25):
                row = pipeline.Row(1, "p1", {f"w{worker}n{number}": "x"})
                with transaction.atomic():
                    pipeline.apply_chunk(client.pk, KeyKind.PC_ID, [row], create_missing=False)
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    stored = Profile.objects.get(pc_id="p1").attributes
    assert set(stored) == {f"w{w}n{n}" for w in range(8) for n in range(25)}
