"""The worker's memory does not grow with the shape of a batch file (docs/performance.md#batch-files).

A chunk is bounded in rows, cells and bytes (docs/operations.md#configuration), so a file of
1,000 columns is applied in the memory a narrow file takes. Each file is applied by a fresh
process running the worker's batch processing (tests/batch_worker_probe.py) on a database of
its own (SQLite) or on the test database (PostgreSQL), and the process's peak RSS is read as it
ends.
"""

from __future__ import annotations

import io
import sqlite3
import tracemalloc
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client as HttpClient

from bench import batch_file as narrow_file
from profiles.ingest import pipeline, processing
from profiles.ingest.batches import ApiVersion, Batch, BatchFailure
from profiles.ingest.batchfile import MAX_LINE_BYTES, Header, ParsedChunk, read_chunks
from profiles.ingest.pipeline import Row, RowFailure
from profiles.models import Client, Profile
from profiles.rules.errors import ErrorCode
from profiles.store import KeyKind
from tests.batches import batch_id_of, submit, values
from tests.fixtures import worker_environment_on_this_database
from tests.support import run_probe

ROOT = Path(__file__).resolve().parent.parent
PEAK_LIMIT_KB = 150 * 1024
WIDE_COLUMNS = 1_000
# 2,000 wide rows are enough to compare with: chunks bounded in rows only grow the worker by
# over 100 MB with them, and bounded chunks keep a wide file in a directory to the same memory
# at any length. The file kept in the database is 25 MB, far past the 8 MB its reading may add.
WIDE_ROWS = 2_000
WIDE_ROWS_IN_THE_DATABASE = 10_000
NARROW_ROWS = 20_000


def write_wide_file(path: Path, rows: int) -> None:
    """``rows`` rows of 1,000 two-digit values (2.5 KB each). Even rows fill every column and
    fail (their 1,000 attributes would pass 64 KB); odd rows fill every other one and apply."""
    names = ",".join(f"a{number:04d}" for number in range(WIDE_COLUMNS))
    full = ",".join(f"{number % 90 + 10}" for number in range(WIDE_COLUMNS))
    sparse = ",".join(f"{number % 90 + 10}" if number % 2 else "" for number in range(WIDE_COLUMNS))
    with path.open("w", encoding="ascii", newline="\n") as handle:
        handle.write(f"batch=thirdPartyId,{names}\n")
        for row in range(rows):
            handle.write(f"wide-{row:06d},{sparse if row % 2 else full}\n")


@pytest.fixture
def worker_env(tmp_path: Path, transactional_db: None) -> dict[str, str]:
    """The environment of a worker process on this test's database."""
    env = worker_environment_on_this_database(tmp_path / "var")
    if connection.vendor == "sqlite":
        # The test database lives in memory: the worker gets a copy of it in a file.
        connection.ensure_connection()
        with closing(sqlite3.connect(tmp_path / "var" / "targetadmin.sqlite3")) as copy:
            connection.connection.backup(copy)
    return env


def apply_in_worker(env: dict[str, str], path: Path, rows: int) -> dict[str, Any]:
    return run_probe("tests.batch_worker_probe", env, str(path), str(rows))


def wide_outcome(rows: int) -> tuple[str, int, int]:
    """The wide file's even rows fail and its odd rows apply, wherever it is kept."""
    return ("complete", rows // 2, rows // 2)


def outcome(result: dict[str, Any]) -> tuple[str, int, int]:
    return (result["status"], result["successful"], result["failed"])


def growth_kb(result: dict[str, Any]) -> int:
    """What applying the file added to the worker process's peak RSS."""
    grown: int = result["peak_kb"] - result["peak_kb_before"]
    return grown


@pytest.mark.django_db(transaction=True)
def test_it_applies_a_file_of_1000_columns_in_the_memory_of_a_narrow_file(
    worker_env: dict[str, str],
) -> None:
    batches = Path(worker_env["TARGETADMIN_VAR_DIR"]) / "batches"
    narrow_file.write(batches / "narrow.txt", NARROW_ROWS)
    write_wide_file(batches / "wide.txt", WIDE_ROWS)

    narrow = apply_in_worker(worker_env, batches / "narrow.txt", NARROW_ROWS)
    wide = apply_in_worker(worker_env, batches / "wide.txt", WIDE_ROWS)

    assert (narrow["status"], narrow["successful"]) == ("complete", NARROW_ROWS)
    assert outcome(wide) == wide_outcome(WIDE_ROWS)
    shown = f"narrow {narrow}, wide {wide}"
    assert narrow["peak_kb"] < PEAK_LIMIT_KB, shown
    assert wide["peak_kb"] < PEAK_LIMIT_KB, shown
    # What applying the file added to the process's peak: the wide file's stays within a
    # fixed bound of the narrow one's, whatever the chunk pacing (chunks sized in rows only
    # made it grow by 500 MB and more).
    assert growth_kb(wide) < growth_kb(narrow) + 24 * 1024, shown


@pytest.mark.django_db(transaction=True)
def test_it_applies_a_wide_file_kept_in_the_database_in_the_memory_of_one_in_a_directory(
    worker_env: dict[str, str],
) -> None:
    """BATCH_STORAGE=database: the 25 MB file is read a chunk at a time, never whole."""
    batches = Path(worker_env["TARGETADMIN_VAR_DIR"]) / "batches"
    write_wide_file(batches / "long.txt", WIDE_ROWS_IN_THE_DATABASE)
    write_wide_file(batches / "wide.txt", WIDE_ROWS)

    database = apply_in_worker(
        worker_env | {"BATCH_STORAGE": "database"}, batches / "long.txt", WIDE_ROWS_IN_THE_DATABASE
    )
    directory = apply_in_worker(worker_env, batches / "wide.txt", WIDE_ROWS)

    assert outcome(database) == wide_outcome(WIDE_ROWS_IN_THE_DATABASE)
    shown = f"directory {directory}, database {database}"
    assert database["peak_kb"] < PEAK_LIMIT_KB, shown
    assert growth_kb(database) < growth_kb(directory) + 8 * 1024, shown


# How chunks are bounded ---------------------------------------------------------------------

HEADER = Header(KeyKind.PC_ID, ("a", "b", "c"))  # 4 columns with the key


def parsed(raw: bytes, **bounds: Any) -> list[ParsedChunk]:
    with io.BytesIO(raw) as handle:
        return list(read_chunks(handle, HEADER, offset=0, position=2, **bounds))


def entries(chunks: list[ParsedChunk]) -> list[Row | RowFailure]:
    found: list[Row | RowFailure] = [entry for chunk in chunks for entry in chunk.rows]
    found += [failure for chunk in chunks for failure in chunk.failures]
    return sorted(found, key=lambda entry: entry.position)


def test_a_chunk_ends_at_its_cells_or_its_bytes_as_well_as_its_rows() -> None:
    raw = b"".join(b"p%d,1,2,3\n" % number for number in range(10))  # 9 bytes a line

    assert [len(chunk.rows) for chunk in parsed(raw, size=4)] == [4, 4, 2]
    # 4 columns a row: 9 cells make 2 rows.
    assert [len(chunk.rows) for chunk in parsed(raw, size=4, max_cells=9)] == [2] * 5
    # A chunk takes the line that brings it to 20 bytes, and always one line.
    assert [len(chunk.rows) for chunk in parsed(raw, size=4, max_bytes=20)] == [3, 3, 3, 1]
    assert [len(chunk.rows) for chunk in parsed(raw, size=4, max_cells=1)] == [1] * 10
    assert [len(chunk.rows) for chunk in parsed(raw, size=4, max_bytes=1)] == [1] * 10


def test_a_batch_resumed_at_any_chunk_boundary_reads_exactly_the_rows_after_it() -> None:
    lines = [b"p1,1,2,3\n", b"\n", b"p2,x,y,z,extra\r\n", b"p3,%zz\n", b"\xff,1\n", b"p4,4"]
    raw = b"".join(lines)
    whole = entries(parsed(raw, size=100))
    assert [entry.position for entry in whole] == [2, 4, 5, 6, 7]

    for bounds in ({"max_cells": 4}, {"max_bytes": 10}, {"max_cells": 8, "max_bytes": 15}):
        chunks = parsed(raw, size=100, **bounds)
        assert entries(chunks) == whole
        for chunk in chunks:
            assert chunk.end_offset in {len(b"".join(lines[:n])) for n in range(len(lines) + 1)}
            with io.BytesIO(raw) as handle:
                rest = read_chunks(
                    handle, HEADER, offset=chunk.end_offset, position=chunk.next_position, size=100
                )
                assert entries(list(rest)) == [
                    entry for entry in whole if entry.position >= chunk.next_position
                ]


def peak_bytes_while(call: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_line_past_1_mib_fails_whole_without_being_held_in_memory() -> None:
    long_line = b"huge," + b"x" * (20 * MAX_LINE_BYTES) + b"\r\n"
    raw = b"p1,1\n" + long_line + b"p2,2\n"
    handle = io.BytesIO(raw)
    chunks: list[ParsedChunk] = []

    def read() -> None:
        chunks.extend(read_chunks(handle, HEADER, offset=0, position=2, size=100))

    assert peak_bytes_while(read) < 1.5 * MAX_LINE_BYTES
    assert entries(chunks) == [
        Row(2, "p1", {"a": "1"}),
        RowFailure(
            3,
            "huge",
            ErrorCode.PROFILE_TOO_LARGE,
            f"the line takes {len(long_line):,} bytes, more than the 1,048,576 any applicable"
            " row can take",
        ),
        Row(4, "p2", {"a": "2"}),
    ]
    assert [chunk.end_offset for chunk in chunks] == [5 + len(long_line), len(raw)]


def test_a_line_of_1_mib_is_still_read() -> None:
    line = b"p1," + b"+" * (MAX_LINE_BYTES - 7) + b",2\r\n"  # blanks padding a value
    assert len(line) == MAX_LINE_BYTES
    assert entries(parsed(line + line.rstrip(), size=100)) == [
        Row(2, "p1", {"a": "", "b": "2"}),
        Row(3, "p1", {"a": "", "b": "2"}),
    ]


def test_a_line_of_a_million_commas_fails_without_being_split_into_cells() -> None:
    raw = b"p1" + b"," * (MAX_LINE_BYTES - 10) + b"\n"
    chunks: list[ParsedChunk] = []

    def read() -> None:
        chunks.extend(parsed(raw, size=100))

    assert peak_bytes_while(read) < 5 * MAX_LINE_BYTES
    [failure] = entries(chunks)
    assert failure == RowFailure(
        2,
        "p1",
        ErrorCode.WRONG_CELL_COUNT,
        f"{MAX_LINE_BYTES - 9} cells where the header has 4 columns",
    )


def test_recording_a_chunk_of_10000_failed_rows_holds_a_thousand_at_a_time(demo: Client) -> None:
    batch = Batch.objects.create(
        id="demo-1-1", client=demo, api_version=ApiVersion.V2, create_missing=True, batch_size=1
    )
    message = "5 cells where the header has 4 columns"
    failures = [
        RowFailure(n, f"id-{n}", ErrorCode.WRONG_CELL_COUNT, message) for n in range(10_000)
    ]
    outcome = pipeline.Outcome(failures=failures)

    def record() -> None:
        assert batch.record_chunk(outcome, start_offset=0, end_offset=1, next_position=10_002)

    # All 10,000 as model instances and one statement took 8 MB (PostgreSQL) to 17 MB (SQLite).
    assert peak_bytes_while(record) < 4 * 1024 * 1024
    assert BatchFailure.objects.filter(batch=batch).count() == 10_000


def test_a_wide_batch_applies_chunk_by_chunk_with_duplicates_in_file_order(
    demo: Client, client: HttpClient, settings: Any
) -> None:
    settings.BATCH_CHUNK_CELLS = 8  # 2 rows of 4 columns a chunk
    body = "batch=pcId,a,b,c\nu,1,1,\nu,2,,\nother,x,,\nu,,,3\nu,4,,\n"
    batch_id = batch_id_of(submit(client, body))
    assert values(demo, pc_id="u") == {"a": "4", "b": "1", "c": "3"}
    assert Batch.objects.get(pk=batch_id).chunks_done == 3


def test_a_json_bulk_chunk_ends_at_its_cells_as_well_as_its_rows(settings: Any) -> None:
    settings.BATCH_CHUNK_CELLS = 5
    profiles = [
        {"pcId": "p1", "attributes": {"a": "1", "b": "2", "c": "3"}},  # 4 cells
        {"pcId": "p2", "attributes": {"a": "1"}},  # 2 cells: the chunk is full
        {"pcId": "p3"},
        "not a profile",  # a failure: 1 cell
    ]
    numbered = ((processing.json_entry(i, item), i + 1) for i, item in enumerate(profiles))
    chunks = list(processing.chunks(numbered, 100))
    assert [(len(chunk.runs[0][1]), len(chunk.failures)) for chunk in chunks] == [(2, 0), (1, 1)]
    assert [chunk.next_position for chunk in chunks] == [2, 4]


@pytest.mark.postgresql
def test_a_few_wide_rows_are_merged_through_copy_on_postgresql(demo: Client) -> None:
    statements: list[str] = []

    def watch(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        statements.append(sql)
        return execute(sql, *args)

    wide = {f"a{number:03d}": "v" * 40 for number in range(400)}  # about 30 KB stored
    rows = [Row(n, f"w{n}", wide) for n in range(4)] + [Row(9, "w0", {"a000": "last"})]
    with connection.execute_wrapper(watch):
        outcome = pipeline.apply(demo.pk, KeyKind.THIRD_PARTY_ID, rows, create_missing=True)

    assert outcome.successful == 5
    assert any("profile_merge_rows" in sql for sql in statements)
    profile = Profile.objects.get(client=demo, third_party_id="w0")
    assert profile.attributes["a000"]["value"] == "last"
    assert len(profile.attributes) == 400
