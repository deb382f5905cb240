"""Cutting the input into batch files ("parts") within the server's limits, streaming.

A part's rows are encoded as they are read and spooled to a temporary file, so memory holds
a thousand rows at most whatever the input's size; a part closes before the row that would pass
``max_rows`` rows or ``max_bytes`` bytes (the body must stay strictly smaller than that).

Each part knows, for every line of its batch file, the input line it came from (``LineMap``),
so the server's "Line N" in a failure can be told in the input file's numbers.
"""

from __future__ import annotations

import hashlib
import tempfile
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

from targetadmin_upload.batchfile import encode_header, encode_line
from targetadmin_upload.sources import Failure, Source

FINAL_STATUSES = ("complete", "stuck")
PENDING_ROWS = 1000  # rows encoded before they are written out together


class LineMap:
    """Batch file line number → input line number, kept as runs with the same offset."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._offsets: list[int] = []

    def add(self, batch_line: int, input_line: int) -> None:
        offset = input_line - batch_line
        if not self._offsets or self._offsets[-1] != offset:
            self._starts.append(batch_line)
            self._offsets.append(offset)

    def __getitem__(self, batch_line: int) -> int | None:
        run = bisect_right(self._starts, batch_line) - 1
        return batch_line + self._offsets[run] if run >= 0 else None


@dataclass(eq=False)
class Part:
    """One batch file: its rows on disk while it is sent, then what the server said of it."""

    number: int
    input_start: int  # byte offset in the input where its rows begin
    input_end: int = 0
    first_line: int = 0
    last_line: int = 0
    rows: int = 0
    rows_bytes: int = 0
    header: bytes = b""
    idempotency_key: str = ""
    failures: list[Failure] = field(default_factory=list)  # rows the tool could not send…
    unsent: int = 0  # …and how many (the list is let go once written out)
    lines: LineMap = field(default_factory=LineMap)
    spool: IO[bytes] | None = None
    _digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    _pending: list[bytes] = field(default_factory=list)
    # What the server said; the status is "unsent" until a batch exists.
    batch_id: str = ""
    status: str = "unsent"
    consumed: int = 0
    successful: int = 0
    not_found: int = 0
    failed: int = 0

    @property
    def size(self) -> int:
        """The body's size in bytes: ``batch=``, the header and the rows."""
        return len(self.header) + self.rows_bytes

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES or not self.rows

    def add(self, line: int, encoded: bytes) -> None:
        self._pending.append(encoded)
        if len(self._pending) >= PENDING_ROWS:
            self._flush()
        self.rows += 1
        self.rows_bytes += len(encoded)
        self.lines.add(self.rows + 1, line)  # the header is line 1
        self._seen(line)

    def fail(self, failure: Failure) -> None:
        self.failures.append(failure)
        self.unsent += 1
        self._seen(failure.line)

    def _seen(self, line: int) -> None:
        self.first_line = self.first_line or line
        self.last_line = line

    def _flush(self) -> None:
        if not self._pending:
            return
        if self.spool is None:
            self.spool = tempfile.TemporaryFile(prefix="targetadmin-upload-")  # noqa: SIM115
        data = b"".join(self._pending)
        self._pending.clear()
        self.spool.write(data)
        self._digest.update(data)

    def close(self, header: bytes, key_of: Callable[[Part, str], str]) -> None:
        self._flush()
        self.header = header
        self.idempotency_key = key_of(self, self._digest.hexdigest())

    def body(self, chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        """The batch file, from its first byte each time it is asked for."""
        yield self.header
        if self.spool is not None:
            self.spool.seek(0)
            while chunk := self.spool.read(chunk_size):
                yield chunk

    def discard_rows(self) -> None:
        if self.spool is not None:
            self.spool.close()
            self.spool = None


def split(
    source: Source, *, max_rows: int, max_bytes: int, key_of: Callable[[Part, str], str]
) -> Iterator[Part]:
    """The source's rows as parts, each closed (header and key set) before it is yielded.

    A part may have no rows, only failures; the last part is yielded even when empty.
    """
    number = 1
    part = Part(number, input_start=source.bytes_read)
    header = b""
    names_known = -1
    for item in source:
        if isinstance(item, Failure):
            part.fail(item)
            part.input_end = source.bytes_read
            continue
        if len(source.names) != names_known:  # a JSON Lines record named a new attribute
            assert source.kind is not None  # noqa: S101 (a record implies a kind)
            header = encode_header(source.kind, source.names)
            names_known = len(source.names)
        encoded = encode_line(item.cells)
        if len(header) + len(encoded) >= max_bytes:
            reason = f"the row alone makes a batch file of {max_bytes:,} bytes or more"
            part.fail(Failure(item.line, item.cells[0], reason))
            continue
        if part.rows and (
            part.rows >= max_rows or len(header) + part.rows_bytes + len(encoded) >= max_bytes
        ):
            part.close(header, key_of)
            yield part
            number += 1
            part = Part(number, input_start=part.input_end)
        part.add(item.line, encoded)
        part.input_end = source.bytes_read
    if part.rows:
        assert source.kind is not None  # noqa: S101
        header = encode_header(source.kind, source.names)
    part.input_end = source.bytes_read
    part.close(header, key_of)
    yield part
