"""Where batch files wait for a worker is configuration (docs/operations.md#batch-storage).

The directory and the database keep a file alike: written as it arrives, read from any byte
offset, deleted once the batch is done. In the database a file is rows of
``FILE_CHUNK_BYTES``: stored while the upload goes on (never held whole), and read from an
offset without fetching the chunks before it. The S3 storage is tested against a real
endpoint only, when ``TARGETADMIN_TEST_S3_ENDPOINT`` and its companions name one.
"""

from __future__ import annotations

import os
import stat
import tracemalloc
import uuid
from datetime import timedelta
from io import BytesIO, StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.files import File
from django.core.files.storage import Storage
from django.core.management import call_command
from django.db import connection
from django.test import Client as HttpClient
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from profiles import tasks
from profiles.api import submissions
from profiles.ingest import processing
from profiles.ingest.batches import ApiVersion, Batch, Status
from profiles.ingest.storage import (
    FILE_CHUNK_BYTES,
    BatchFileChunk,
    DatabaseStorage,
    DirectoryStorage,
    batch_files,
    open_at,
)
from profiles.models import Client, Profile
from tests.batches import batch_id_of, refusal, status, stored_files, submit, values

DATABASE = "profiles.ingest.storage.DatabaseStorage"
DIRECTORY = "profiles.ingest.storage.DirectoryStorage"


@pytest.fixture
def in_database(settings: Any) -> None:
    settings.STORAGES = {**settings.STORAGES, "batches": {"BACKEND": DATABASE}}


@pytest.fixture(params=[DIRECTORY, DATABASE], ids=["directory", "database"])
def storage(request: pytest.FixtureRequest, settings: Any) -> Storage:
    settings.STORAGES = {**settings.STORAGES, "batches": {"BACKEND": request.param}}
    return batch_files()


def rows(count: int, width: int = 100) -> str:
    """A batch file of ``count`` rows of about ``width`` bytes."""
    return "batch=pcId,a\n" + "".join(f"p{n},{'v' * width}\n" for n in range(count))


def chunk_reads(queries: CaptureQueriesContext) -> int:
    return sum('"data"' in query["sql"] for query in queries.captured_queries)


# Any storage -----------------------------------------------------------------------------


@pytest.mark.parametrize("write", ["open", "save"])
def test_a_batch_file_in_a_directory_is_readable_by_its_owner_only(
    write: str, tmp_path: Path
) -> None:
    storage = DirectoryStorage(location=str(tmp_path / "batches"))
    before = os.umask(0o022)
    try:
        if write == "open":
            with storage.open("2026/file.csv", "wb") as handle:
                handle.write(b"batch=pcId,a\n")
        else:
            storage.save("2026/file.csv", BytesIO(b"batch=pcId,a\n"))
    finally:
        os.umask(before)
    assert stat.S_IMODE((tmp_path / "batches" / "2026").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "batches" / "2026" / "file.csv").stat().st_mode) == 0o600


def test_a_batch_file_written_over_one_left_open_is_made_private(tmp_path: Path) -> None:
    left = tmp_path / "file.csv"
    left.write_bytes(b"old")
    left.chmod(0o644)
    with DirectoryStorage(location=str(tmp_path)).open("file.csv", "wb") as handle:
        handle.write(b"new")
    assert stat.S_IMODE(left.stat().st_mode) == 0o600
    assert left.read_bytes() == b"new"


@pytest.mark.django_db
def test_a_stored_file_is_read_back_from_any_offset_and_deleted(storage: Storage) -> None:
    content = bytes(range(256)) * 4_000  # about 4 chunks in the database
    with storage.open("b.txt", "wb") as handle:
        for start in range(0, len(content), 100_000):
            handle.write(content[start : start + 100_000])

    assert storage.exists("b.txt")
    assert storage.size("b.txt") == len(content)
    for offset in (0, 1, FILE_CHUNK_BYTES - 1, FILE_CHUNK_BYTES, 3 * FILE_CHUNK_BYTES + 7):
        with open_at("b.txt", offset) as handle:
            assert handle.read() == content[offset:]
    with open_at("b.txt", len(content)) as handle:
        assert handle.read() == b""
    storage.delete("b.txt")
    assert not storage.exists("b.txt")
    assert stored_files() == []


@pytest.mark.django_db
def test_an_empty_file_exists_and_reads_empty(storage: Storage) -> None:
    storage.open("empty.txt", "wb").close()
    assert storage.exists("empty.txt")
    with open_at("empty.txt", 0) as handle:
        assert handle.read() == b""


@pytest.mark.django_db
def test_a_file_never_stored_is_not_found(storage: Storage) -> None:
    assert not storage.exists("missing.txt")
    with pytest.raises(FileNotFoundError):
        open_at("missing.txt", 0)


@pytest.mark.django_db
def test_lines_read_from_an_offset_are_the_files_lines_from_there(storage: Storage) -> None:
    lines = [f"line {n}\n".encode() for n in range(100_000)]  # about 1.1 MB
    storage.save("lines.jsonl", File(BytesIO(b"".join(lines))))
    offset = sum(map(len, lines[:60_000]))
    with open_at("lines.jsonl", offset) as handle:
        assert list(handle) == lines[60_000:]


@pytest.mark.django_db
def test_pruning_deletes_files_no_batch_names_once_a_day_old(
    storage: Storage, demo: Client
) -> None:
    """Left by an upload whose web process died; a file still arriving is kept."""
    day_ago_ms = int((timezone.now() - timedelta(days=1, minutes=1)).timestamp() * 1000)
    now_ms = int(timezone.now().timestamp() * 1000)
    stray, arriving = f"demo-{day_ago_ms}-00000001.txt", f"demo-{now_ms}-00000002.txt"
    named = f"demo-{day_ago_ms}-00000003.jsonl"
    for name in (stray, arriving, named):
        storage.save(name, File(BytesIO(b"batch=pcId,a\n")))
    Batch.objects.create(
        id=named.removesuffix(".jsonl"),
        client=demo,
        api_version="json",
        create_missing=False,
        batch_size=1,
        file_name=named,
    )

    call_command("prune_batches", stdout=StringIO())

    assert sorted(stored_files()) == sorted([arriving, named])


# The database ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("in_database")
def test_a_file_in_the_database_is_stored_a_chunk_at_a_time_as_it_is_written() -> None:
    handle = batch_files().open("b.txt", "wb")
    for _ in range(3):
        handle.write(b"x" * FILE_CHUNK_BYTES)
        # Each full chunk is in the table already: the writer holds at most one.
    handle.write(b"tail")
    assert BatchFileChunk.objects.filter(name="b.txt").count() == 3
    handle.close()

    stored = BatchFileChunk.objects.filter(name="b.txt").order_by("offset")
    assert list(stored.values_list("offset", flat=True)) == [
        0,
        FILE_CHUNK_BYTES,
        2 * FILE_CHUNK_BYTES,
        3 * FILE_CHUNK_BYTES,
    ]
    assert bytes(stored.last().data) == b"tail"  # type: ignore[union-attr]


@pytest.mark.django_db
@pytest.mark.usefixtures("in_database")
def test_reading_from_an_offset_fetches_no_chunk_before_it() -> None:
    content = b"".join(bytes([n]) * FILE_CHUNK_BYTES for n in range(10))
    DatabaseStorage().save("ten.txt", File(BytesIO(content)))
    offset = 7 * FILE_CHUNK_BYTES + 5

    with CaptureQueriesContext(connection) as queries, open_at("ten.txt", offset) as handle:
        assert handle.read() == content[offset:]

    # Chunks 7, 8 and 9, then one query that finds no chunk 10.
    assert chunk_reads(queries) == 4


@pytest.mark.django_db
@pytest.mark.usefixtures("in_database")
def test_writing_a_file_again_replaces_it() -> None:
    with batch_files().open("b.txt", "wb") as handle:
        handle.write(b"a" * (FILE_CHUNK_BYTES + 1))
    with batch_files().open("b.txt", "wb") as handle:
        handle.write(b"short")
    with open_at("b.txt", 0) as handle:
        assert handle.read() == b"short"


@pytest.mark.usefixtures("in_database")
def test_a_batch_stored_in_the_database_is_applied_and_its_chunks_deleted(
    demo: Client, client: HttpClient
) -> None:
    body = rows(6_000)  # about 630 KB: three chunks
    batch_id = batch_id_of(submit(client, body))

    done = status(client, batch_id)
    assert (done["status"], done["successfulUpdates"]) == ("complete", "6000")
    assert values(demo, pc_id="p5999") == {"a": "v" * 100}
    assert not BatchFileChunk.objects.exists()


@pytest.mark.usefixtures("in_database")
def test_a_20_mb_upload_is_stored_in_the_database_without_being_held_whole(
    demo: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks, "enqueue", lambda batch: None)  # the web side alone
    body = rows(200_000).encode()  # about 21 MB
    request = RequestFactory().post(
        "/m2/demo/v2/profile/batchUpdate", body, content_type="application/x-www-form-urlencoded"
    )
    tracemalloc.start()  # the request's body is already in memory; what storing it takes
    try:
        batch = submissions.submit_file(request, demo, ApiVersion.V2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert batch.batch_size == 200_000
    assert peak < 5 * 1024 * 1024, f"{peak:,} bytes"
    assert BatchFileChunk.objects.count() == -(-len(body) // FILE_CHUNK_BYTES)


@pytest.mark.usefixtures("in_database")
def test_a_json_bulk_batch_stored_in_the_database_is_applied_and_its_chunks_deleted(
    demo: Client, client: HttpClient, settings: Any
) -> None:
    settings.JSON_BULK_INLINE_PROFILES = 10
    profiles = [{"thirdPartyId": f"j{n}", "attributes": {"a": str(n)}} for n in range(50)]
    response = client.post(
        "/api/v1/clients/demo/profiles/bulk",
        {"profiles": profiles, "createMissing": True},
        content_type="application/json",
    )

    assert (response.json()["status"], response.json()["successfulUpdates"]) == ("complete", 50)
    assert values(demo, third_party_id="j49") == {"a": "49"}
    assert not BatchFileChunk.objects.exists()


class WorkerKilled(BaseException):
    """Stands for the worker process dying: nothing after it runs, nothing is caught."""


@pytest.mark.usefixtures("in_database")
def test_a_batch_in_the_database_resumes_at_its_next_chunk_after_its_worker_died(
    demo: Client, client: HttpClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.BATCH_CHUNK_ROWS = 1_000  # the batch's chunks cut across the file's
    real_apply, applied = processing.apply, []

    def dies_after_three(batch: Batch, chunk: processing.Chunk) -> Any:
        if len(applied) == 3:
            raise WorkerKilled
        applied.append(chunk)
        return real_apply(batch, chunk)

    monkeypatch.setattr(processing, "apply", dies_after_three)
    submit(client, rows(6_000))
    monkeypatch.undo()
    batch = Batch.objects.get()
    assert 0 < batch.consumed_count < 6_000
    Profile.objects.filter(pc_id="p0").update(attributes={})  # a re-applied chunk would show

    tasks.process_batch.call(batch.pk)

    batch.refresh_from_db()
    assert (batch.status, batch.consumed_count, batch.successful_updates) == (
        Status.COMPLETE,
        6_000,
        6_000,
    )
    assert values(demo, pc_id="p0") == {}
    assert not BatchFileChunk.objects.exists()


@pytest.mark.usefixtures("in_database")
def test_an_upload_refused_past_its_first_chunk_leaves_no_chunk(
    demo: Client, client: HttpClient, settings: Any
) -> None:
    settings.BATCH_MAX_ROWS = 5_000
    response = submit(client, rows(6_000))

    assert response.status_code == 413
    assert refusal(response) == "The batch file has more than 5,000 rows."
    assert not Batch.objects.exists()
    assert not BatchFileChunk.objects.exists()


@pytest.mark.usefixtures("in_database")
def test_an_upload_that_breaks_off_leaves_no_chunk(demo: Client, client: HttpClient) -> None:
    body = rows(6_000).encode()
    response = client.post(
        "/m2/demo/v2/profile/batchUpdate",
        data=body,
        content_type="application/x-www-form-urlencoded",
        CONTENT_LENGTH=str(len(body) + 1_000),  # more than is sent
    )

    assert response.status_code == 400
    assert not Batch.objects.exists()
    assert not Profile.objects.exists()
    assert not BatchFileChunk.objects.exists()


@pytest.mark.usefixtures("in_database")
def test_a_batch_whose_chunks_are_gone_is_stuck(demo: Client, settings: Any) -> None:
    batch = Batch.objects.create(
        id="demo-1-1",
        client=demo,
        api_version="v2",
        key_kind="pcId",
        attribute_names=["a"],
        create_missing=True,
        batch_size=1,
        file_name="demo-1-1.txt",
    )
    processing.run(batch.pk)
    batch.refresh_from_db()
    assert batch.status == Status.STUCK


@pytest.mark.usefixtures("in_database")
def test_pruning_a_batch_deletes_its_chunks(
    demo: Client, client: HttpClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks, "enqueue", lambda batch: None)  # no worker takes it
    batch_id = batch_id_of(submit(client, rows(3_000)))
    assert BatchFileChunk.objects.filter(name=f"{batch_id}.txt").count() == 2
    settings.BATCH_RETENTION_DAYS = 1
    Batch.objects.update(created_at="2000-01-01T00:00:00Z")

    call_command("prune_batches", stdout=StringIO())

    assert not Batch.objects.exists()
    assert not BatchFileChunk.objects.exists()


# S3-compatible object storage --------------------------------------------------------------

S3_SETTINGS = {
    "TARGETADMIN_TEST_S3_ENDPOINT": "endpoint_url",
    "TARGETADMIN_TEST_S3_BUCKET": "bucket_name",
    "TARGETADMIN_TEST_S3_ACCESS_KEY": "access_key",
    "TARGETADMIN_TEST_S3_SECRET_KEY": "secret_key",
}


@pytest.fixture
def in_s3(settings: Any) -> Storage:
    missing = [name for name in S3_SETTINGS if not os.environ.get(name)]
    if missing:
        pytest.skip(f"no S3 endpoint configured ({', '.join(missing)})")
    options: dict[str, Any] = {option: os.environ[name] for name, option in S3_SETTINGS.items()}
    options["region_name"] = os.environ.get("TARGETADMIN_TEST_S3_REGION") or None
    options["location"] = f"targetadmin-test-{uuid.uuid4().hex}"
    settings.STORAGES = {
        **settings.STORAGES,
        "batches": {"BACKEND": "profiles.ingest.object_storage.ObjectStorage", "OPTIONS": options},
    }
    return batch_files()


@pytest.mark.django_db
def test_a_file_in_s3_is_read_from_an_offset_and_deleted(in_s3: Storage) -> None:
    content = bytes(range(256)) * 40_000  # about 10 MB: a multipart upload of two parts
    with in_s3.open("b.txt", "wb") as handle:
        for start in range(0, len(content), 256 * 1024):
            handle.write(content[start : start + 256 * 1024])
    try:
        for offset in (0, 5 * 1024 * 1024 + 3, len(content) - 1, len(content)):
            with open_at("b.txt", offset) as handle:
                assert handle.read() == content[offset:]
    finally:
        in_s3.delete("b.txt")
    assert not in_s3.exists("b.txt")


def test_a_batch_in_s3_is_applied_and_its_file_deleted(
    in_s3: Storage, demo: Client, client: HttpClient
) -> None:
    batch_id = batch_id_of(submit(client, rows(6_000)))

    done = status(client, batch_id)
    assert (done["status"], done["successfulUpdates"]) == ("complete", "6000")
    assert not in_s3.exists(f"{batch_id}.txt")
