"""Applying a batch: its rows, chunk by chunk, through the one ingest pipeline.

Each chunk commits its profile changes together with the batch's counts, failed rows and
resume point. A chunk another worker has already recorded is rolled back whole, so running
a batch twice (a resumed worker racing a slow one) never applies a chunk twice in effect.

The worker is the batch's writer: it reads the stored file a block at a time and hands
each block to the batch's parser process (``parser_process``), which splits, decodes,
validates and encodes it while the writer writes the chunk before it. Only the writer
touches the database.

A chunk is bounded in rows (``BATCH_CHUNK_ROWS``), in cells (``BATCH_CHUNK_CELLS``: rows
times columns, the key included) and in bytes of the file (``BATCH_CHUNK_BYTES``), so the
worker's memory does not grow with the width of the rows or the length of the values
(docs/operations.md#configuration). One block is in the parser and one chunk in the writer
at a time.
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
from django.utils import timezone

from profiles.ingest import pipeline
from profiles.ingest.batches import ApiVersion, Batch, Status
from profiles.ingest.batchfile import Header, LineBlock, chunk_rows, parse_block, read_block
from profiles.ingest.parser_process import ParserProcess
from profiles.ingest.pipeline import Outcome, Row, RowFailure
from profiles.ingest.storage import open_at
from profiles.rules import metrics
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


@dataclass(slots=True)
class Chunk:
    """Rows to apply together: runs of rows of one key kind, in order, and failed lines."""

    runs: list[tuple[KeyKind, list[Row]]] = field(default_factory=list)
    failures: list[RowFailure] = field(default_factory=list)
    end_offset: int = 0
    next_position: int = 0


@dataclass(slots=True)
class PreparedChunk:
    """A chunk validated and encoded: its runs as the writer applies them."""

    runs: list[tuple[KeyKind, pipeline.Prepared]]
    failures: list[RowFailure]
    end_offset: int
    next_position: int

    @property
    def rows(self) -> int:
        return sum(len(prepared) for _, prepared in self.runs) + len(self.failures)


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


def prepare(chunk: Chunk, *, create_missing: bool) -> PreparedChunk:
    """Validate and encode the chunk's rows (``pipeline.prepare``); no database involved."""
    runs = [
        (kind, pipeline.prepare(kind, rows, create_missing=create_missing))
        for kind, rows in chunk.runs
    ]
    return PreparedChunk(runs, chunk.failures, chunk.end_offset, chunk.next_position)


def prepared(batch: Batch, chunks: Iterable[Chunk]) -> Iterator[PreparedChunk]:
    """``chunks`` prepared one after the other in this process, for a batch applied inline."""
    for chunk in chunks:
        yield prepare(chunk, create_missing=batch.create_missing)


@dataclass(frozen=True, slots=True)
class Block:
    """Lines of a stored batch as the writer read them, from byte ``offset`` (line
    ``position`` of a batch file): what the parser makes chunks of."""

    lines: LineBlock | list[bytes]  # a batch file's, or a JSON batch's ``[index, profile]`` lines
    offset: int
    position: int


@dataclass(frozen=True, slots=True)
class Source:
    """What reading and parsing a stored batch need to know of it, the same for each block."""

    header: Header | None  # a batch file's; None for a JSON batch
    create_missing: bool

    @classmethod
    def of(cls, batch: Batch) -> Source:
        if batch.api_version == ApiVersion.JSON:
            return cls(None, batch.create_missing)
        header = Header(KeyKind(batch.key_kind), tuple(batch.attribute_names))
        return cls(header, batch.create_missing)

    def read(self, handle: IO[bytes], rows: int, *, offset: int, position: int) -> Block | None:
        """The next block from ``handle`` (at byte ``offset``, line ``position``): at most
        ``rows`` lines, ``BATCH_CHUNK_CELLS`` cells and ``BATCH_CHUNK_BYTES`` bytes; None at
        the end of the file."""
        max_bytes = settings.BATCH_CHUNK_BYTES
        if self.header is None:
            json_lines = _read_json_lines(handle, rows, max_bytes)
            return Block(json_lines, offset, position) if json_lines else None
        rows = chunk_rows(self.header, rows, settings.BATCH_CHUNK_CELLS)
        lines = read_block(handle, rows, max_bytes)
        return Block(lines, offset, position) if lines.length else None

    def parse(self, block: Block) -> list[PreparedChunk]:
        """The block's chunks, validated and encoded: the parser process's work."""
        lines = block.lines
        if isinstance(lines, LineBlock):
            if self.header is None:
                raise ValueError("a batch file's lines without its header")
            parsed = parse_block(self.header, lines, offset=block.offset, position=block.position)
            rows = [(self.header.kind, parsed.rows)]
            raw = [Chunk(rows, parsed.failures, parsed.end_offset, parsed.next_position)]
        else:
            entries = json_lines_entries(lines, block.offset)
            raw = list(chunks(entries, len(lines), start=block.offset))
        return [prepare(chunk, create_missing=self.create_missing) for chunk in raw]


def _read_json_lines(handle: IO[bytes], rows: int, max_bytes: int) -> list[bytes]:
    lines: list[bytes] = []
    total = 0
    while len(lines) < rows and total < max_bytes and (line := handle.readline()):
        lines.append(line)
        total += len(line)
    return lines


def json_lines_entries(lines: list[bytes], offset: int) -> Iterator[tuple[Entry, int]]:
    """Entries of a stored JSON batch's lines (one ``[index, profile]`` each) from ``offset``."""
    for line in lines:
        offset += len(line)
        index, item = json.loads(line)
        yield json_entry(index, item), offset


def stored_chunks(batch: Batch, size: int, handle: IO[bytes]) -> Iterator[PreparedChunk]:
    """The batch's chunks from its resume point, read from ``handle`` (its stored file) and
    prepared in this process, ``size`` rows a block."""
    source = Source.of(batch)
    offset, position = batch.resume_offset, batch.resume_position
    handle.seek(offset)
    while block := source.read(handle, size, offset=offset, position=position):
        for chunk in source.parse(block):
            offset, position = chunk.end_offset, chunk.next_position
            yield chunk


def apply(batch: Batch, chunk: PreparedChunk) -> Outcome:
    """Write the chunk's runs in order: the writer's part of a chunk."""
    outcome = Outcome(failures=list(chunk.failures))
    for _, prepared in chunk.runs:
        outcome.add(
            pipeline.write(
                batch.client_id, prepared, create_missing=batch.create_missing, with_pc_ids=False
            )
        )
    return outcome


# Pacing (``paced_chunks``): the first chunk's rows, and the fewest a chunk is cut down to.
FIRST_PACED_ROWS = 1_000
FEWEST_PACED_ROWS = 100


def paced_chunks(batch: Batch, most_rows: int, seconds: float) -> Iterator[PreparedChunk]:
    """The batch's chunks from its resume point, parsed in the batch's parser process one
    block ahead of the writer and each sized so that its transaction lasts about
    ``seconds``: from the rows a second the previous one's transaction applied (the time
    between handing a chunk out and being asked for the next), at most twice the previous
    chunk, between ``FEWEST_PACED_ROWS`` and ``most_rows`` rows.

    A write transaction holds SQLite's one write lock, and single updates wait behind it
    (docs/operations.md#sqlite-writers): so a batch never holds it much longer than
    ``seconds``, however wide its rows, and the rows a chunk commits together stay many.
    The block in the parser was sized before the chunk in the writer was timed, so the
    sizes follow the timing one chunk late.
    """
    fewest = min(FEWEST_PACED_ROWS, most_rows)
    rows = min(FIRST_PACED_ROWS, most_rows)
    source = Source.of(batch)
    # The file stays open from chunk to chunk: a stored file is opened (and, in the
    # database, its chunk fetched) once, not once per chunk of the batch.
    with (
        open_at(batch.file_name, batch.resume_offset) as handle,
        ParserProcess(source.parse) as parser,
    ):
        block = source.read(
            handle, rows, offset=batch.resume_offset, position=batch.resume_position
        )
        if block is None:
            return
        parser.submit(block)
        while True:
            parsed = parser.result()
            # The next block is read and parsed while this one's chunks are written.
            block = source.read(
                handle, rows, offset=parsed[-1].end_offset, position=parsed[-1].next_position
            )
            more = block is not None
            if block is not None:
                parser.submit(block)
            del block
            for chunk in parsed:
                handed_out = time.monotonic()
                yield chunk
                took = max(time.monotonic() - handed_out, 1e-6)
                done = chunk.rows
                rows = max(fewest, min(most_rows, 2 * done, int(done * seconds / took)))
            del parsed
            if not more:
                return


class ChunkAlreadyApplied(Exception):
    pass


def process(batch: Batch, chunks: Iterable[PreparedChunk]) -> None:
    """Apply ``chunks`` (those after the batch's resume point) and complete the batch."""
    clock = time.perf_counter
    # Seconds in each stage, logged at the end; ``parse`` is the writer waiting for its next
    # chunk (the parser works meanwhile, in its own process).
    parse = merge = bookkeeping = 0.0
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
    if batch.attempts == 1 and batch.chunks_done == 0:  # the batch's first start
        metrics.count_batch_started((timezone.now() - batch.created_at).total_seconds())
    process(
        batch,
        paced_chunks(batch, settings.BATCH_CHUNK_ROWS, settings.BATCH_CHUNK_MILLISECONDS / 1000),
    )
