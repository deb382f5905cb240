"""A batch's parser process or its writer killed (SIGKILL) mid-batch loses nothing and applies
nothing twice (docs/performance.md#batch-files): the batch finishes with exact counts.

The parser killed, the writer starts another and hands it the block the dead one held. The
writer killed, its parser ends with it, and the next attempt carries on from the last
committed chunk.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client as HttpClient

from profiles.ingest import processing
from profiles.ingest.batches import ApiVersion, Batch, BatchFailure, Status
from profiles.ingest.processing import PreparedChunk
from profiles.ingest.storage import batch_files
from profiles.models import Client, Profile
from tests.batches import batch_id_of, submit, values
from tests.fixtures import worker_environment_on_this_database

ROOT = Path(__file__).resolve().parent.parent
ROWS = 3_000
BAD_EVERY = 500  # every 500th row has a cell too many and fails
BAD_ROWS = ROWS // BAD_EVERY


def batch_file(rows: int = ROWS) -> str:
    lines = (
        f"k{n},v{n},extra\n" if n % BAD_EVERY == BAD_EVERY - 1 else f"k{n},v{n}\n"
        for n in range(rows)
    )
    return "batch=thirdPartyId,a\n" + "".join(lines)


def parser_pids() -> list[int]:
    return [child.pid for child in multiprocessing.active_children() if child.pid]


def test_it_finishes_a_batch_exactly_when_its_parser_process_is_killed_mid_batch(
    demo: Client, client: HttpClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.BATCH_CHUNK_ROWS = 100
    real_apply = processing.apply
    applied: list[int] = []
    killed: list[int] = []

    def apply(batch: Batch, chunk: PreparedChunk) -> Any:
        if len(applied) in (3, 7):  # the parser holds the next block; twice, a new one each time
            (pid,) = parser_pids()
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        if len(applied) == 4:  # the first chunk is committed: applied again, k0 would show
            Profile.objects.filter(third_party_id="k0").update(attributes={})
        applied.append(chunk.rows)
        return real_apply(batch, chunk)

    monkeypatch.setattr(processing, "apply", apply)
    batch_id = batch_id_of(submit(client, batch_file()))

    batch = Batch.objects.get(pk=batch_id)
    assert len(set(killed)) == 2
    assert sum(applied) == ROWS
    assert (batch.status, batch.consumed_count, batch.successful_updates) == (
        Status.COMPLETE,
        ROWS,
        ROWS - BAD_ROWS,
    )
    assert (batch.failed_updates, BatchFailure.objects.filter(batch=batch).count()) == (
        BAD_ROWS,
        BAD_ROWS,
    )
    assert Profile.objects.filter(client=demo).count() == ROWS - BAD_ROWS
    assert Profile.objects.get(client=demo, third_party_id="k0").attributes == {}
    assert values(demo, third_party_id=f"k{ROWS - 2}") == {"a": f"v{ROWS - 2}"}


def test_it_raises_what_the_parser_raised(demo: Client) -> None:
    """A JSON batch whose stored line is not JSON: the parser's error reaches the writer."""
    batch = Batch.objects.create(
        id="demo-1-1",
        client=demo,
        api_version=ApiVersion.JSON,
        create_missing=True,
        batch_size=1,
        file_name="demo-1-1.jsonl",
    )
    with batch_files().open(batch.file_name, "wb") as handle:
        handle.write(b"not json\n")
    with pytest.raises(ValueError, match="Expecting value"):
        processing.run(batch.pk)
    assert parser_pids() == []


# The writer: a worker process of its own, on a database the test can read while it runs.


@pytest.fixture
def worker_env(tmp_path: Path, transactional_db: None) -> dict[str, str]:
    return worker_environment_on_this_database(
        tmp_path / "var", BATCH_CHUNK_ROWS="50", BATCH_CHUNK_MILLISECONDS="1"
    )


def start_worker(env: dict[str, str], batch_id: str) -> subprocess.Popen[bytes]:
    code = (
        "import django; django.setup(); from profiles.ingest import processing; "
        f"processing.run({batch_id!r})"
    )
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)  # noqa: S603


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def has_ended(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in state  # a zombie has ended; only its exit status is left


@pytest.mark.django_db(transaction=True)
def test_it_finishes_a_batch_exactly_when_its_writer_is_killed_mid_batch(
    worker_env: dict[str, str], demo: Client
) -> None:
    rows = 20_000
    var = Path(worker_env["TARGETADMIN_VAR_DIR"])
    first = "batch=thirdPartyId,a\n"
    (var / "batches" / "kill.txt").write_text(batch_file(rows))
    batch = Batch.objects.create(
        id="demo-kill-1",
        client=demo,
        api_version=ApiVersion.V2,
        key_kind="thirdPartyId",
        attribute_names=["a"],
        create_missing=True,
        batch_size=rows,
        file_name="kill.txt",
        resume_offset=len(first),
        resume_position=2,
    )
    database = var / "targetadmin.sqlite3"
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        with closing(sqlite3.connect(database)) as copy:
            connection.connection.backup(copy)

    def progress() -> tuple[int, int, str]:
        if connection.vendor == "sqlite":
            with closing(sqlite3.connect(database)) as db:
                found: tuple[int, int, str] = db.execute(
                    "SELECT chunks_done, consumed_count, status FROM profiles_batch WHERE id = ?",
                    (batch.pk,),
                ).fetchone()
                return found
        batch.refresh_from_db()
        return batch.chunks_done, batch.consumed_count, batch.status

    writer = start_worker(worker_env, batch.pk)
    deadline = time.monotonic() + 120
    while progress()[0] < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    parsers = children_of(writer.pid)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    _, consumed, status = progress()
    assert status == Status.INCOMPLETE
    assert 0 < consumed < rows
    assert len(parsers) == 1
    deadline = time.monotonic() + 30
    while not has_ended(parsers[0]) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert has_ended(parsers[0])  # the parser ended with its writer

    if connection.vendor == "sqlite":
        with closing(sqlite3.connect(database)) as db, db:
            db.execute("UPDATE profiles_profile SET attributes = '{}' WHERE third_party_id = 'k0'")
    else:
        Profile.objects.filter(third_party_id="k0").update(attributes={})
    resumed = start_worker(worker_env, batch.pk)
    assert resumed.wait(timeout=300) == 0

    bad = rows // BAD_EVERY
    if connection.vendor == "sqlite":
        with closing(sqlite3.connect(database)) as db:
            counts = db.execute(
                "SELECT status, consumed_count, successful_updates, failed_updates"
                " FROM profiles_batch WHERE id = ?",
                (batch.pk,),
            ).fetchone()
            failures, profiles, k0 = (
                db.execute("SELECT count(*) FROM profiles_batchfailure").fetchone()[0],
                db.execute("SELECT count(*) FROM profiles_profile").fetchone()[0],
                db.execute(
                    "SELECT attributes FROM profiles_profile WHERE third_party_id = 'k0'"
                ).fetchone()[0],
            )
    else:
        batch.refresh_from_db()
        counts = (
            batch.status,
            batch.consumed_count,
            batch.successful_updates,
            batch.failed_updates,
        )
        failures = BatchFailure.objects.filter(batch=batch).count()
        profiles = Profile.objects.filter(client=demo).count()
        k0 = Profile.objects.get(client=demo, third_party_id="k0").attributes
    assert tuple(counts) == (Status.COMPLETE, rows, rows - bad, bad)
    assert (failures, profiles) == (bad, rows - bad)
    assert k0 in ("{}", {})  # the first chunk was not applied again
