"""Applying a batch: its rows, chunk by chunk, through the one ingest pipeline.

Each chunk commits its profile changes together with the batch's counts, failed rows and
resume point. A chunk another worker has already recorded is rolled back whole, so running
a batch twice (a resumed worker racing a slow one) never applies a chunk twice in effect.

A chunk is bounded in rows (``BATCH_CHUNK_ROWS``), in cells (``BATCH_CHUNK_CELLS``: rows
times columns, the key included) and in bytes of the file (``BATCH_CHUNK_BYTES``), so the
worker's memory does not grow with the width of the rows or the length of the values
(docs/operations.md#configuration). Only one chunk is held at a time.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings
from django.db import transaction

from profiles.ingest import pipeline
from profiles.ingest.batches import ApiVersion, Batch, Status
from profiles.ingest.batchfile import Header, read_chunks
from profiles.ingest.pipeline import Outcome, Row, RowFailure
from profiles.ingest.storage import open_at
from profiles.rules.errors import ErrorCode
from profiles.store import KeyKind

Entry = tuple[KeyKind, Row] | RowFailure

logger = logging.getLogger(__name__)


def json_entry(index: int, item: Any) -> Entry:
    """One profile of a JSON bulk request (docs/api.md#json-bulk-update) as a keyed ``Row``, or why not."""

    def failed(code: ErrorCode, message: str, profile_id: object = "") -> RowFailure:
        return RowFailure(index, profile_id if isinstance(profile_id, str) else "", code, message)

    if not isinstance(item, dict):
        return failed(ErrorCode.BAD_PROFILE, "each profile must be a JSON object")
    named = [kind for kind in KeyKind if kind.value in item]
    if len(named) != 1:
        return failed(ErrorCode.BAD_PROFILE, "a profile needs exactly one of thirdPartyId or pcId")
    kind = named[0]
    profile_id = item[kind.value]
    if not isinstance(profile_id, str):
        return failed(ErrorCode.BAD_ID, f"{kind} must be a string")
    attributes = item.get("attributes", {})
    if not isinstance(attributes, dict):
        return failed(ErrorCode.BAD_PROFILE, "attributes must be a JSON object", profile_id)
    for name, value in attributes.items():
        if not isinstance(value, str):
            return failed(ErrorCode.BAD_VALUE, f"value of {name!r} must be a string", profile_id)
    return kind, Row(index, profile_id, attributes)


def json_file_entries(handle: IO[bytes], offset: int) -> Iterator[tuple[Entry, int]]:
    """Entries of a stored JSON batch from ``offset``: one ``[index, profile]`` line each."""
    handle.seek(offset)
    for line in handle:
        offset += len(line)
        index, item = json.loads(line)
        yield json_entry(index, item), offset


def file_chunks(batch: Batch, size: int, handle: IO[bytes]) -> Iterator[Chunk]:
    header = Header(KeyKind(batch.key_kind), tuple(batch.attribute_names))
    for parsed in read_chunks(
        handle,
        header,
        offset=batch.resume_offset,
        position=batch.resume_position,
        size=size,
        max_cells=settings.BATCH_CHUNK_CELLS,
        max_bytes=settings.BATCH_CHUNK_BYTES,
    ):
        chunk = Chunk(
            [(header.kind, parsed.rows)],
            parsed.failures,
            parsed.end_offset,
            parsed.next_position,
        )
        del parsed
        yield chunk
        del chunk  # before the next chunk is read


@dataclass(slots=True)
class Chunk:
    """Rows to apply together: runs of rows of one key kind, in order, and failed lines."""

    runs: list[tuple[KeyKind, list[Row]]] = field(default_factory=list)
    failures: list[RowFailure] = field(default_factory=list)
    end_offset: int = 0
    next_position: int = 0


def chunks(entries: Iterable[tuple[Entry, int]], size: int, *, start: int = 0) -> Iterator[Chunk]:
    """Group JSON entries (with the offset after each) into chunks of ``size`` entries.

    A chunk also ends at ``BATCH_CHUNK_CELLS`` cells (a profile's attributes and its id)
    and at ``BATCH_CHUNK_BYTES`` bytes of the file from ``start``.
    """
    max_cells, max_bytes = settings.BATCH_CHUNK_CELLS, settings.BATCH_CHUNK_BYTES
    chunk, count, cells = Chunk(), 0, 0
    for entry, offset in entries:
        if isinstance(entry, RowFailure):
            chunk.failures.append(entry)
            chunk.next_position = entry.position + 1
            cells += 1
        else:
            kind, row = entry
            if not chunk.runs or chunk.runs[-1][0] is not kind:
                chunk.runs.append((kind, []))
            chunk.runs[-1][1].append(row)
            chunk.next_position = row.position + 1
            cells += len(row.attributes) + 1
        chunk.end_offset = offset
        count += 1
        if count >= size or cells >= max_cells or offset - start >= max_bytes:
            yield chunk
            chunk, count, cells, start = Chunk(), 0, 0, offset
    if count:
        yield chunk


def stored_chunks(batch: Batch, size: int, handle: IO[bytes]) -> Iterator[Chunk]:
    """The batch's chunks from its resume point, read from ``handle``, its stored file."""
    if batch.api_version == ApiVersion.JSON:
        entries = json_file_entries(handle, batch.resume_offset)
        return chunks(entries, size, start=batch.resume_offset)
    return file_chunks(batch, size, handle)


def apply(batch: Batch, chunk: Chunk) -> Outcome:
    """Apply the chunk's rows in order, one pipeline call per run of the same key kind."""
    outcome = Outcome(failures=list(chunk.failures))
    for kind, rows in chunk.runs:
        outcome.add(
            pipeline.apply_chunk(
                batch.client_id,
                kind,
                rows,
                create_missing=batch.create_missing,
                with_pc_ids=False,
            )
        )
    return outcome


# Pacing (``paced_chunks``): the first chunk's rows, and the fewest a chunk is cut down to.
FIRST_PACED_ROWS = 1_000
FEWEST_PACED_ROWS = 100


def paced_chunks(batch: Batch, most_rows: int, seconds: float) -> Iterator[Chunk]:
    """The batch's chunks from its resume point, each sized so that its transaction lasts
    about ``seconds``: from the rows a second the previous one's transaction applied (the
    time between handing a chunk out and being asked for the next), at most twice the
    previous chunk, between ``FEWEST_PACED_ROWS`` and ``most_rows`` rows.

    A write transaction holds SQLite's one write lock, and single updates wait behind it
    (docs/operations.md#sqlite-writers): so a batch never holds it much longer than
    ``seconds``, however wide its rows, and the rows a chunk commits together stay many.
    """
    fewest = min(FEWEST_PACED_ROWS, most_rows)
    rows = min(FIRST_PACED_ROWS, most_rows)
    # The file stays open from chunk to chunk: a stored file is opened (and, in the
    # database, its chunk fetched) once, not once per chunk of the batch.
    with open_at(batch.file_name, batch.resume_offset) as handle:
        while True:
            # From the resume point the last chunk recorded; the reader is let go.
            chunk = next(stored_chunks(batch, rows, handle), None)
            if chunk is None:
                return
            handed_out = time.monotonic()
            yield chunk
            took = max(time.monotonic() - handed_out, 1e-6)
            done = sum(len(run_rows) for _, run_rows in chunk.runs) + len(chunk.failures)
            rows = max(fewest, min(most_rows, 2 * done, int(done * seconds / took)))


class ChunkAlreadyApplied(Exception):
    pass


def process(batch: Batch, chunks: Iterable[Chunk]) -> None:
    """Apply ``chunks`` (those after the batch's resume point) and complete the batch."""
    clock = time.perf_counter
    parse = merge = bookkeeping = 0.0  # seconds in each stage, logged at the end
    started = clock()
    try:
        for chunk in chunks:
            parsed = clock()
            parse += parsed - started
            with transaction.atomic():
                outcome = apply(batch, chunk)
                merged = clock()
                merge += merged - parsed
                recorded = batch.record_chunk(
                    outcome,
                    start_offset=batch.resume_offset,
                    end_offset=chunk.end_offset,
                    next_position=chunk.next_position,
                )
                if not recorded:
                    raise ChunkAlreadyApplied
            del chunk, outcome  # before the next chunk is read
            started = clock()
            bookkeeping += started - merged  # the counts, the resume point, the commit
    except ChunkAlreadyApplied:
        return  # another worker owns this batch now; it finishes it
    batch.finish(Status.COMPLETE)
    logger.info(
        "batch %s applied: parse %.3f s, merge %.3f s, bookkeeping %.3f s",
        batch.pk,
        parse,
        merge,
        bookkeeping,
    )


def run(batch_id: str) -> None:
    """The worker's entry point: carry the batch on from its last committed chunk."""
    batch = Batch.objects.filter(pk=batch_id).first()
    if batch is None or batch.is_finished:
        return
    if not batch.has_file:
        batch.finish(Status.STUCK)
        return
    process(
        batch,
        paced_chunks(batch, settings.BATCH_CHUNK_ROWS, settings.BATCH_CHUNK_MILLISECONDS / 1000),
    )
