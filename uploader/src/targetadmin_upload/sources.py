"""Reading the input file, streaming: a CSV with a header row, or JSON Lines.

Each source yields, in file order, a ``Record`` per row to send or a ``Failure`` for a row the
tool cannot send (it never reaches the server, and goes to FILE.failed.csv). A problem with
the file as a whole raises ``Refused``. Line numbers are the input file's, from 1, so a CSV
record whose quoted value spans lines is numbered by its first line.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

from targetadmin_upload.batchfile import KEY_KINDS
from targetadmin_upload.errors import Refused

_KINDS_BY_LOWER = {kind.lower(): kind for kind in KEY_KINDS}
# A line no input line can be: lines are decoded with ``surrogateescape``, which makes only
# U+DC80-U+DCFF of surrogates, never U+D800.
_PAST_THE_END = "\ud800"


@dataclass(slots=True)
class Record:
    line: int
    cells: list[str]  # the key, then the values in the order of the source's ``names``


@dataclass(slots=True)
class Failure:
    line: int
    key: str
    reason: str


class Source:
    """What both formats share: the key kind, the attribute names, and how far the read got."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._handle: IO[bytes] = path.open("rb")
        except OSError as error:
            raise Refused(f"Cannot read {path}: {error.strerror or error}.") from None
        self.size = os.fstat(self._handle.fileno()).st_size
        self.bytes_read = 0
        self.lines_read = 0
        self.kind: str | None = None
        self.names: list[str] = []
        self.last_undecodable_line = 0

    def _lines(self) -> Iterator[bytes]:
        for raw in self._handle:
            self.bytes_read += len(raw)
            self.lines_read += 1
            yield raw.removeprefix(codecs.BOM_UTF8) if self.lines_read == 1 else raw

    def _text_lines(self) -> Iterator[str]:
        """The lines as text; bytes that are not UTF-8 become lone surrogates, and are noted."""
        for raw in self._lines():
            try:
                yield raw.decode()
            except UnicodeDecodeError:
                self.last_undecodable_line = self.lines_read
                yield raw.decode(errors="surrogateescape")

    def __iter__(self) -> Iterator[Record | Failure]:
        raise NotImplementedError

    def close(self) -> None:
        self._handle.close()


class CsvSource(Source):
    """A CSV file (RFC 4180 quoting) whose header names the key column, then the attributes.

    The first column is the key: named ``thirdPartyId`` or ``pcId`` (in any case), or anything
    when ``key`` says which kind of id it holds.
    """

    def __init__(self, path: Path, key: str | None) -> None:
        super().__init__(path)
        _check_quoting(path)
        self._reader = csv.reader(self._text_lines())
        header = None
        try:
            for row in self._reader:
                if row:
                    header = row
                    break
        except csv.Error as error:
            raise Refused(f"{path}, line {self.lines_read}: {error}.") from None
        if header is None:
            raise Refused(f"{path} is empty: it needs a header row naming the key and attributes.")
        if self.last_undecodable_line:
            raise Refused(f"{path}: the header row is not valid UTF-8.")
        first, *names = (cell.strip() for cell in header)
        self.kind = _key_kind(path, first, key)
        if not names:
            raise Refused(f"{path}: the header names no attributes after the key column {first!r}.")
        if "" in names:
            raise Refused(f"{path}: the header has an empty attribute name.")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise Refused(f"{path}: the header names {repeated[0]!r} twice.")
        self.names = names

    def __iter__(self) -> Iterator[Record | Failure]:
        width = len(self.names) + 1
        while True:
            line = self.lines_read + 1
            try:
                row = next(self._reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise Refused(f"{self.path}, line {line}: {error}.") from None
            if not row:
                continue  # a blank line
            if self.last_undecodable_line >= line:
                yield Failure(line, _printable(row[0]), "not valid UTF-8")
            elif len(row) > width:
                yield Failure(line, row[0], f"{len(row)} cells where the header has {width}")
            else:
                yield Record(line, row)


def _check_quoting(path: Path) -> None:
    """Refuse a CSV the parser would read wrongly to its end, before any part is sent.

    A quoted value that is never closed takes in every line after it, and the csv module says
    nothing of it: the file would be sent as fewer rows than it has. The quote can only be
    known to be open at the end of the file, so the file is read through once first (about a
    second for 75 MB). A line past the end that the open value would take in too tells it.
    """
    with path.open("rb") as handle:
        first = handle.readline().removeprefix(codecs.BOM_UTF8)
        lines = (raw.decode("utf-8", "surrogateescape") for raw in itertools.chain([first], handle))
        reader = csv.reader(itertools.chain(lines, ["\n", _PAST_THE_END]))
        last: list[str] = []
        row_line = next_line = 1
        try:
            for row in reader:
                last, row_line, next_line = row, next_line, reader.line_num + 1
        except csv.Error as error:
            raise Refused(f"{path}, line {next_line}: {error}.") from None
    if last != [_PAST_THE_END]:
        raise Refused(
            f"{path}, line {row_line}: the row starting here has a quoted value that is never"
            " closed, so it would take in every line to the end of the file."
        )


def _printable(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _key_kind(path: Path, first: str, key: str | None) -> str:
    named = _KINDS_BY_LOWER.get(first.lower())
    if named and key and named != key:
        raise Refused(f"{path}: the key column is {first!r} but --key says {key}.")
    if named:
        return named
    if key:
        return key
    raise Refused(
        f"{path}: the header's first column must be thirdPartyId or pcId, not {first[:64]!r};"
        " or say which kind of id it holds with --key."
    )


class JsonLinesSource(Source):
    """One JSON object a line: ``{"thirdPartyId": "…", "attributes": {"name": "value"}}``.

    The kind of id is ``key``, or else the first record's. Values are strings or numbers (sent
    as written: the parser hands a number over as its text, never through a float); ``null``
    is an empty value. Attribute names are added as they appear.
    """

    def __init__(self, path: Path, key: str | None) -> None:
        super().__init__(path)
        self.kind = key
        self._columns: dict[str, int] = {}

    def __iter__(self) -> Iterator[Record | Failure]:
        for raw in self._lines():
            if raw.strip():
                yield self._record(self.lines_read, raw)

    def _record(self, line: int, raw: bytes) -> Record | Failure:
        try:
            item = json.loads(raw, parse_float=str, parse_int=str, parse_constant=_not_json)
        except ValueError as error:
            return Failure(line, "", f"not valid JSON: {error}")
        if not isinstance(item, dict):
            return Failure(line, "", "not a JSON object")
        kinds = [kind for kind in KEY_KINDS if kind in item]
        if len(kinds) != 1:
            return Failure(line, "", "needs exactly one of thirdPartyId and pcId")
        kind = kinds[0]
        key = _text(item[kind])
        if key is None:
            return Failure(line, "", f"{kind} must be a string or a number")
        if self.kind is None:
            self.kind = kind
        elif kind != self.kind:
            return Failure(line, key, f"has a {kind} but this upload is keyed by {self.kind}")
        attributes = item.get("attributes", {})
        if not isinstance(attributes, dict):
            return Failure(line, key, "attributes must be a JSON object")
        cells = [key]
        for name, value in attributes.items():
            text = "" if value is None else _text(value)
            if text is None:
                return Failure(line, key, f"attribute {name!r} must be a string or a number")
            index = self._columns.setdefault(name, len(self._columns) + 1)
            if index == len(self.names) + 1:
                self.names.append(name)
            cells += [""] * (index + 1 - len(cells))
            cells[index] = text
        return Record(line, cells)


def _not_json(constant: str) -> NoReturn:
    raise ValueError(f"{constant} is not a JSON number")


def _text(value: Any) -> str | None:
    """A string, or a number (read as its text); ``None`` for anything else."""
    return value if isinstance(value, str) else None


FORMATS = {"csv": CsvSource, "jsonl": JsonLinesSource}
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")


def open_source(path: Path, file_format: str | None, key: str | None) -> Source:
    if file_format is None:
        file_format = "jsonl" if path.suffix.lower() in JSON_LINES_SUFFIXES else "csv"
    if path.is_dir():
        raise Refused(f"{path} is a directory, not a file.")
    return FORMATS[file_format](path, key)
