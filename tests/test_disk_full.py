"""A full disk while an upload is stored: the call is answered 507 with Retry-After in the
endpoint's envelope, the partial file is removed, no batch exists and no profile changed.
Once there is room again, the same upload goes through.

The disk is filled at the operating system's boundary: the batch folder's files are opened
on a raw file whose writes stop with ENOSPC once its room is used up (after a short write,
as the kernel does), under Python's own buffering, so the error surfaces wherever it would
on a real full disk: in a write, or when the last buffered bytes are flushed on close."""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import pathlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client as HttpClient

from profiles.ingest.batches import Batch
from profiles.ingest.storage import BatchFileChunk
from profiles.models import Client, Profile
from profiles.rules import faults
from tests.batches import refusal, submit, values

# Through Django's test client and through the fast lane in front of it.
pytestmark = pytest.mark.usefixtures("both_doors")

SMALL = "batch=pcId,a\np1,x\np2,y\n"  # stays in the write buffer until the file is closed
LARGE = "batch=pcId,a\n" + "".join(f"p{n},{'v' * 200}\n" for n in range(2_000))  # ~410 KB


class FullDisk(io.FileIO):
    """A file on a disk with ``room`` bytes left."""

    room = 0

    def write(self, data: Any) -> int:
        left = FullDisk.room - self.tell()
        if left <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.name)
        return super().write(bytes(data)[:left])


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch, settings: Any) -> type[FullDisk]:
    """Batch files are kept in ``BATCH_DIR``, and those written there land on the full disk;
    the rest are untouched."""
    settings.STORAGES = {
        **settings.STORAGES,
        "batches": {"BACKEND": "profiles.ingest.storage.DirectoryStorage"},
    }
    real_open = builtins.open

    def open_on_disk(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, int) or "w" not in mode:
            return real_open(file, mode, *args, **kwargs)
        path = pathlib.Path(file)
        if path.parent != settings.BATCH_DIR:
            return real_open(file, mode, *args, **kwargs)
        buffered = io.BufferedWriter(FullDisk(path, "w"))
        if "b" in mode:
            return buffered
        return io.TextIOWrapper(buffered, encoding=kwargs.get("encoding", "utf-8"))

    monkeypatch.setattr(builtins, "open", open_on_disk)
    FullDisk.room = 0
    return FullDisk


@pytest.fixture
def existing(demo: Client) -> Profile:
    return Profile.objects.create(
        client=demo,
        pc_id="p1",
        attributes={"a": {"value": "kept", "modifiedAt": "2026-01-01T00:00:00+00:00"}},
    )


def assert_nothing_stored(demo: Client, settings: Any) -> None:
    leftovers = list(settings.BATCH_DIR.iterdir()) if settings.BATCH_DIR.exists() else []
    assert leftovers == []
    assert not Batch.objects.exists()
    assert values(demo, pc_id="p1") == {"a": "kept"}


@pytest.mark.parametrize(
    ("body", "room"),
    [
        (SMALL, 0),  # nothing fits: fails when the buffered bytes are flushed on close
        (SMALL, 10),  # a few bytes fit
        (LARGE, 0),  # fails in the first write
        (LARGE, 300_000),  # fails part-way through a large file
        (LARGE, len(LARGE) - 1),  # the last byte does not fit
    ],
)
def test_it_answers_507_and_keeps_nothing_of_a_batch_file_that_does_not_fit(
    demo: Client,
    existing: Profile,
    client: HttpClient,
    disk: type[FullDisk],
    settings: Any,
    body: str,
    room: int,
) -> None:
    disk.room = room

    response = submit(client, body)

    assert response.status_code == 507
    assert response["Retry-After"] == str(faults.DISK_FULL_RETRY_AFTER_SECONDS)
    assert refusal(response) == faults.DISK_FULL_MESSAGE
    assert_nothing_stored(demo, settings)


def test_it_takes_the_same_upload_once_there_is_room_again(
    demo: Client, existing: Profile, client: HttpClient, disk: type[FullDisk], settings: Any
) -> None:
    disk.room = 1000
    assert submit(client, LARGE).status_code == 507

    disk.room = 10 * len(LARGE)
    response = submit(client, LARGE)

    assert response.status_code == 200
    assert Batch.objects.get().successful_updates == 2_000
    assert values(demo, pc_id="p1") == {"a": "v" * 200}


def test_it_answers_507_to_a_multipart_upload_that_does_not_fit(
    demo: Client, existing: Profile, client: HttpClient, disk: type[FullDisk], settings: Any
) -> None:
    disk.room = 100_000
    upload = SimpleUploadedFile("batch.txt", LARGE.encode())

    response = client.post("/m2/demo/profile/batchUpdate", {"batch": upload})

    assert response.status_code == 507
    assert refusal(response) == faults.DISK_FULL_MESSAGE
    assert_nothing_stored(demo, settings)


def test_it_answers_507_to_a_json_bulk_request_that_does_not_fit(
    demo: Client, existing: Profile, client: HttpClient, disk: type[FullDisk], settings: Any
) -> None:
    settings.JSON_BULK_INLINE_PROFILES = 10  # larger requests are stored for the worker
    disk.room = 2_000
    document = {
        "profiles": [{"pcId": f"p{n}", "attributes": {"a": "v" * 50}} for n in range(1, 100)]
    }

    response = client.post(
        "/api/v1/clients/demo/profiles/bulk",
        data=json.dumps(document),
        content_type="application/json",
    )

    assert response.status_code == 507
    assert response["Retry-After"] == str(faults.DISK_FULL_RETRY_AFTER_SECONDS)
    assert json.loads(response.content) == {
        "error": {"code": "insufficient_storage", "message": faults.DISK_FULL_MESSAGE}
    }
    assert_nothing_stored(demo, settings)


def test_other_storage_errors_are_not_taken_for_a_full_disk() -> None:
    assert faults.is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not faults.is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not faults.is_disk_full(ValueError("No space left on device"))


@contextmanager
def sqlite_room(room_bytes: int) -> Iterator[None]:
    """Inside the block, the SQLite database grows by ``room_bytes`` (in whole pages) at
    most: beyond that SQLite itself answers "database or disk is full"."""
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA max_page_count")
        [cap] = cursor.fetchone()
        cursor.execute("PRAGMA page_size")
        [page_size] = cursor.fetchone()
        cursor.execute("PRAGMA page_count")
        [pages] = cursor.fetchone()
        cursor.execute(f"PRAGMA max_page_count = {pages + room_bytes // page_size}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA max_page_count = {cap}")


@pytest.mark.django_db(transaction=True)
def test_it_answers_507_when_the_database_cannot_grow_and_changes_nothing() -> None:
    """SQLite's "database or disk is full", made real by capping the database's pages."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's page cap")
    demo = Client.objects.create(code="demo", name="Demo")
    Profile.objects.create(client=demo, pc_id="p1", attributes={})
    update = urlencode({"mboxPC": "p1", **{f"profile.a{n}": "v" * 256 for n in range(40)}})
    with sqlite_room(0):
        response = HttpClient().post(f"/m2/demo/profile/update?{update}")

    assert response.status_code == 507
    assert refusal(response) == faults.DISK_FULL_MESSAGE
    assert Profile.objects.get(client=demo, pc_id="p1").attributes == {}


# Batch files kept in the database (BATCH_STORAGE=database) --------------------------------


@pytest.fixture
def files_in_database(settings: Any) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "batches": {"BACKEND": "profiles.ingest.storage.DatabaseStorage"},
    }


def assert_no_chunk_or_batch(demo: Client) -> None:
    assert not BatchFileChunk.objects.exists()
    assert not Batch.objects.exists()
    assert values(demo, pc_id="p1") == {}


@pytest.mark.parametrize("room_pages", [0, 70])  # none; the first chunk (256 KB), not all
@pytest.mark.usefixtures("files_in_database")
@pytest.mark.django_db(transaction=True)
def test_it_answers_507_and_keeps_no_chunk_when_sqlite_cannot_hold_the_upload(
    room_pages: int,
) -> None:
    """SQLite's "database or disk is full", made real by capping the database's pages."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's page cap")
    demo = Client.objects.create(code="demo", name="Demo")
    Profile.objects.create(client=demo, pc_id="p1", attributes={})
    with connection.cursor() as cursor:
        cursor.execute("VACUUM")  # no free pages left by earlier tests: the room is exact
    with sqlite_room(room_pages * 4096):
        response = submit(HttpClient(), LARGE)

    assert response.status_code == 507
    assert refusal(response) == faults.DISK_FULL_MESSAGE
    assert_no_chunk_or_batch(demo)


@pytest.mark.postgresql
@pytest.mark.usefixtures("files_in_database")
@pytest.mark.django_db(transaction=True)
def test_it_answers_507_and_keeps_no_chunk_when_postgresql_has_no_room_for_the_upload() -> None:
    """PostgreSQL's own disk_full error (SQLSTATE 53100), raised by the database itself for
    the second chunk of the file: a trigger stands for the full disk under its table."""
    demo = Client.objects.create(code="demo", name="Demo")
    Profile.objects.create(client=demo, pc_id="p1", attributes={})
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.\"offset\" > 0 THEN RAISE EXCEPTION 'could not extend file'"
            " USING ERRCODE = 'disk_full'; END IF; RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER test_disk_full BEFORE INSERT ON profiles_batchfilechunk"
            " FOR EACH ROW EXECUTE FUNCTION test_disk_full()"
        )
    try:
        response = submit(HttpClient(), LARGE)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER test_disk_full ON profiles_batchfilechunk")
            cursor.execute("DROP FUNCTION test_disk_full()")

    assert response.status_code == 507
    assert response["Retry-After"] == str(faults.DISK_FULL_RETRY_AFTER_SECONDS)
    assert refusal(response) == faults.DISK_FULL_MESSAGE
    assert_no_chunk_or_batch(demo)
