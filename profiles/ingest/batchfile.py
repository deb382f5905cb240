"""The batch file format of Adobe Target's bulk profile update (docs/api.md#batch-file-update).

::

    batch=pcId,param1,param2
    123,value1
    124,,value2

Two halves, both streaming and both taking bytes (reading the HTTP upload is
``profiles.api.uploads``'s):

- :class:`BatchFileWriter` receives an upload chunk by chunk, stores it (in the storage
  ``BATCH_STORAGE`` names, docs/operations.md#batch-storage) and checks the whole-file rules
  on the way (``batch=`` prefix, header, size, row count), so a
  refused file is refused before anything changes and a 50 MB upload is never held in
  memory.
- :func:`read_chunks` reads a stored file from a byte offset and turns each line into a
  ``Row`` (or a ``RowFailure`` when the line itself is malformed), for the worker.

Lines are split into cells on raw commas first and each cell is then form-decoded once, so
``%2C`` is a comma inside a value and ``+`` is a space.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import unquote_plus

from django.core.files import File
from django.core.files.storage import Storage

from profiles.ingest.pipeline import Row, RowError, RowFailure, check_attribute_name
from profiles.rules.errors import ErrorCode, ProductError
from profiles.rules.limits import MAX_ID_LENGTH
from profiles.store import KeyKind

PREFIX = b"batch="
MAX_HEADER_BYTES = 64 * 1024
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_BLANKS = " \t"


class FileRefused(ProductError):
    """A whole-file problem: the batch is refused and nothing changes."""


@dataclass(frozen=True, slots=True)
class Header:
    kind: KeyKind
    names: tuple[str, ...]

    @property
    def width(self) -> int:
        return len(self.names) + 1


def decode_cell(cell: str) -> str:
    """Form-decode one cell (``%XX`` escapes, ``+`` is a space) and trim blanks."""
    if "%" in cell:
        if _BAD_ESCAPE.search(cell):
            raise RowError(ErrorCode.BAD_ENCODING, f"bad percent-encoding in {cell[:40]!r}")
        try:
            cell = unquote_plus(cell, errors="strict")
        except UnicodeDecodeError:
            raise RowError(
                ErrorCode.BAD_ENCODING, f"{cell[:40]!r} does not decode to UTF-8"
            ) from None
    elif "+" in cell:
        cell = cell.replace("+", " ")
    return cell.strip(_BLANKS)


def parse_header(line: bytes) -> Header:
    """The header row (without ``batch=``): the key column, then attribute names."""
    try:
        text = line.decode()
        cells = [decode_cell(cell) for cell in text.split(",")]
    except (UnicodeDecodeError, RowError):
        raise FileRefused(
            ErrorCode.BAD_REQUEST, "The batch header is not valid URL-encoded UTF-8."
        ) from None
    key, names = cells[0], cells[1:]
    if key not in (KeyKind.PC_ID, KeyKind.THIRD_PARTY_ID):
        raise FileRefused(
            ErrorCode.BAD_REQUEST,
            f"The batch header must start with pcId or thirdPartyId, not {key[:64]!r}.",
        )
    if not names:
        raise FileRefused(ErrorCode.BAD_REQUEST, "The batch header names no attributes.")
    for name in names:
        try:
            check_attribute_name(name)
        except RowError as error:
            raise FileRefused(
                ErrorCode.BAD_REQUEST, f"Bad batch header: {error.message}."
            ) from None
    if len(set(names)) != len(names):
        raise FileRefused(ErrorCode.BAD_REQUEST, "The batch header names an attribute twice.")
    return Header(KeyKind(key), tuple(names))


def _too_many_cells(line: str, width: int) -> RowError:
    return RowError(
        ErrorCode.WRONG_CELL_COUNT,
        f"{line.count(',') + 1} cells where the header has {width} columns",
    )


def parse_line(header: Header, position: int, line: str) -> Row:
    """One data line as a ``Row``; raises ``RowError`` for a malformed line.

    The common line (no escapes, no blanks to trim) is split and zipped with the header in
    one step, since this runs once per row of every batch.
    """
    # Split at most ``width`` times: a line of a million commas is not a million cells.
    cells = line.split(",", header.width)
    if len(cells) > header.width:
        raise _too_many_cells(line, header.width)
    if "%" in line:
        values = [
            decode_cell(cell) if "%" in cell else cell.replace("+", " ").strip(_BLANKS)
            for cell in cells
        ]
    elif "+" in line:
        values = [cell.replace("+", " ").strip(_BLANKS) for cell in cells]
    elif " " in line or "\t" in line:
        values = [cell.strip(_BLANKS) for cell in cells]
    else:
        values = cells
    # Missing trailing cells are empty values, as in the format's own sample ("123,value1").
    return Row(position, values[0], dict(zip(header.names, values[1:], strict=False)))


def _failed_id(line: str) -> str:
    return line.split(",", 1)[0].strip(_BLANKS)[:MAX_ID_LENGTH]


# A data line longer than this (its line end included) fails whole and is never held in
# memory: no such line can be applied, since its values alone would take the profile past
# MAX_PROFILE_ATTRIBUTES_BYTES (an id of 256 characters, a comma a column for 32,768
# columns, the most a 64 KB header names, and 64 KB of values percent-encoded three bytes
# a byte come to about 230 KB). Only blanks padding a cell could make such a line valid.
MAX_LINE_BYTES = 1024 * 1024


@dataclass(slots=True)
class ParsedChunk:
    rows: list[Row]
    failures: list[RowFailure]
    end_offset: int  # byte offset just after the chunk's last line
    next_position: int  # line number of the line after it


_HEAD_BYTES = 4 * 1024  # of a long line, kept for the id its failure names
_SKIP_BYTES = 64 * 1024  # read at a time past MAX_LINE_BYTES


@dataclass(slots=True)
class _LongLine:
    """A line past ``MAX_LINE_BYTES``: its first bytes (for the id) and its length."""

    head: bytes
    length: int

    def failure(self, position: int) -> RowFailure:
        profile_id = self.head.split(b",", 1)[0].decode(errors="replace").strip(_BLANKS)
        return RowFailure(
            position,
            profile_id[:MAX_ID_LENGTH],
            ErrorCode.PROFILE_TOO_LARGE,
            f"the line takes {self.length:,} bytes, more than the {MAX_LINE_BYTES:,} "
            "any applicable row can take",
        )


def _read_lines(
    handle: IO[bytes], rows: int, max_bytes: int
) -> tuple[list[bytes], int, _LongLine | None]:
    """Up to ``rows`` lines, stopping after the line that brings them to ``max_bytes``.

    Returns the lines, the bytes read and, when the last line read was past
    ``MAX_LINE_BYTES``, that line (not among the lines; it ends the chunk), read on to its
    end a block at a time and never held whole.
    """
    readline = handle.readline
    lines: list[bytes] = []
    append = lines.append
    total = 0
    for _ in range(rows):
        line = readline(MAX_LINE_BYTES)
        if len(line) == MAX_LINE_BYTES and line[-1] != 0x0A:
            rest = readline(_SKIP_BYTES)
            if rest:
                long_line = _LongLine(line[:_HEAD_BYTES], MAX_LINE_BYTES + len(rest))
                del line
                while rest[-1] != 0x0A and (rest := readline(_SKIP_BYTES)):
                    long_line.length += len(rest)
                return lines, total + long_line.length, long_line
        if not line:
            break
        append(line)
        total += len(line)
        if total >= max_bytes:
            break
    return lines, total, None


def _lines(raw_lines: list[bytes]) -> list[str | bytes]:
    """The lines as text without their line ends; a line that is not UTF-8 stays bytes."""
    try:
        text = b"".join(raw_lines).decode()
    except UnicodeDecodeError:
        decoded: list[str | bytes] = []
        for raw in raw_lines:
            try:
                decoded.append(raw.decode().removesuffix("\n").removesuffix("\r"))
            except UnicodeDecodeError:
                decoded.append(raw)
        return decoded
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


@dataclass(slots=True)
class LineBlock:
    """Lines of a stored file as read, not yet parsed: what a chunk is parsed from."""

    lines: list[bytes]
    length: int  # bytes read, the line past ``MAX_LINE_BYTES`` (if any) included
    long_line: _LongLine | None


def read_block(handle: IO[bytes], rows: int, max_bytes: int | None = None) -> LineBlock:
    """Up to ``rows`` lines from the handle's position, stopping after the line that brings
    them to ``max_bytes`` or after a line past ``MAX_LINE_BYTES`` (never held whole)."""
    return LineBlock(*_read_lines(handle, rows, max_bytes or 1 << 62))


def parse_block(header: Header, block: LineBlock, *, offset: int, position: int) -> ParsedChunk:
    """The block's lines as rows and failed lines; it starts at byte ``offset``, line ``position``.

    Blank lines are skipped (they still count as lines); each other line is parsed by
    :func:`parse_line`.
    """
    chunk = ParsedChunk([], [], offset + block.length, position)
    rows, failures = chunk.rows, chunk.failures
    for line in _lines(block.lines):
        if isinstance(line, bytes):
            profile_id = line.split(b",", 1)[0].decode(errors="replace").strip(_BLANKS)
            failures.append(
                RowFailure(
                    position, profile_id[:MAX_ID_LENGTH], ErrorCode.BAD_ENCODING, "not UTF-8"
                )
            )
        elif line:
            try:
                rows.append(parse_line(header, position, line))
            except RowError as error:
                failures.append(RowFailure(position, _failed_id(line), error.code, error.message))
        position += 1
    if block.long_line is not None:
        failures.append(block.long_line.failure(position))
        position += 1
    chunk.next_position = position
    return chunk


def chunk_rows(header: Header, size: int, max_cells: int | None) -> int:
    """Lines a chunk of at most ``size`` lines and ``max_cells`` cells takes (at least one)."""
    return size if max_cells is None else max(1, min(size, max_cells // header.width))


def read_chunks(
    handle: IO[bytes],
    header: Header,
    *,
    offset: int,
    position: int,
    size: int,
    max_cells: int | None = None,
    max_bytes: int | None = None,
) -> Iterator[ParsedChunk]:
    """Parse the stored file from ``offset`` (line number ``position``) a chunk at a time.

    A chunk is at most ``size`` lines, at most ``max_cells`` cells (lines times the
    header's columns) and stops at the line that takes it to ``max_bytes`` bytes, so its
    memory is bounded whatever the file's shape; it always takes at least one line.
    Lines are read and decoded a chunk at a time.
    """
    handle.seek(offset)
    size = chunk_rows(header, size, max_cells)
    while True:
        block = read_block(handle, size, max_bytes)
        if not block.length:
            return
        chunk = parse_block(header, block, offset=offset, position=position)
        del block
        offset, position = chunk.end_offset, chunk.next_position
        yield chunk
        del chunk  # before the next chunk is read


def file_too_large(max_bytes: int) -> FileRefused:
    """The refusal of a file of ``max_bytes`` bytes or more, however it is found out."""
    return FileRefused(
        ErrorCode.TOO_LARGE, f"The batch file must be smaller than {max_bytes:,} bytes."
    )


@dataclass(frozen=True, slots=True)
class StoredFile:
    name: str  # in the storage ``batches``
    header: Header
    rows: int
    data_offset: int  # byte offset of the first data line


class BatchFileWriter:
    """Store an upload as ``name`` in ``storage`` while checking the whole-file rules.

    ``write`` raises ``FileRefused`` as soon as a rule is broken; the caller then calls
    ``discard``. Only the header and the current line's last bytes are held in memory (and
    what the storage buffers: a chunk of the database's, a part of an object store's).
    """

    def __init__(
        self,
        storage: Storage,
        name: str,
        *,
        max_bytes: int,
        max_rows: int,
        prefix_required: bool = True,
    ) -> None:
        self.storage = storage
        self.name = name
        self.max_bytes = max_bytes
        self.max_rows = max_rows
        self.prefix_required = prefix_required
        self.size = 0
        self.rows = 0
        self.header: Header | None = None
        self.data_offset = 0
        self._head = b""
        self._tail = b""
        self._handle: File[Any] | None = storage.open(name, "wb")

    def write(self, chunk: bytes) -> None:
        if self._handle is None:
            raise RuntimeError("write after finish")
        self.size += len(chunk)
        if self.size >= self.max_bytes:
            raise file_too_large(self.max_bytes)
        self._handle.write(chunk)
        if self.header is None:
            self._head += chunk
            end = self._head.find(b"\n")
            if end < 0:
                if len(self._head) > MAX_HEADER_BYTES:
                    raise FileRefused(ErrorCode.BAD_REQUEST, "The batch header line is too long.")
                return
            self.header = self._read_header(self._head[: end + 1])
            self.data_offset = end + 1
            chunk, self._head = self._head[end + 1 :], b""
        self._count_rows(chunk)

    def _read_header(self, line: bytes) -> Header:
        prefixed = line.startswith(PREFIX)
        if self.prefix_required and not prefixed:
            raise FileRefused(ErrorCode.BAD_REQUEST, "The batch file must start with 'batch='.")
        line = line.removeprefix(PREFIX) if prefixed else line
        return parse_header(line.rstrip(b"\r\n"))

    def _count_rows(self, chunk: bytes) -> None:
        lines = (self._tail + chunk).split(b"\n")
        last = lines.pop()
        self.rows += len(lines) - lines.count(b"") - lines.count(b"\r")
        # Only whether the unfinished line is blank matters; a long one is kept as two bytes.
        self._tail = last if len(last) <= 2 else b"--"
        self._check_rows()

    def _check_rows(self) -> None:
        if self.rows > self.max_rows:
            raise FileRefused(
                ErrorCode.TOO_LARGE, f"The batch file has more than {self.max_rows:,} rows."
            )

    def finish(self) -> StoredFile:
        if self._handle is None:
            raise RuntimeError("finish twice")
        self._handle.close()
        self._handle = None
        if self.header is None:
            if not self._head.strip():
                self.discard()
                raise FileRefused(
                    ErrorCode.BAD_REQUEST, "The batch file is empty; it must start with 'batch='."
                )
            self.header = self._read_header(self._head)
            self.data_offset = self.size
        elif self._tail not in (b"", b"\r"):
            self.rows += 1
            self._check_rows()
        return StoredFile(self.name, self.header, self.rows, self.data_offset)

    def discard(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            # Closing may fail again as the write did (a full disk); what is stored goes next.
            with contextlib.suppress(Exception):
                handle.close()
        self.storage.delete(self.name)
