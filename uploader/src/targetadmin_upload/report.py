"""What a run leaves: FILE.failed.csv (line, key, reason per row not applied) and the summary.

Keys and reasons are what someone sent, or what the server said of it: a cell a spreadsheet
would run as a formula is written as the server's own CSV of failed rows writes it
(:mod:`targetadmin_upload.spreadsheet`).
"""

from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any, TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from targetadmin_upload.display import shown
from targetadmin_upload.parts import Part
from targetadmin_upload.spreadsheet import spreadsheet_safe


class FailedRows:
    """FILE.failed.csv, written as parts finish; replaced whole at the end, or removed when
    every row was applied (so no stale file from an earlier run is left to mislead)."""

    HEADER = ("line", "key", "reason")

    def __init__(self, input_path: Path) -> None:
        self.path = input_path.with_name(input_path.name + ".failed.csv")
        self._partial = input_path.with_name(input_path.name + ".failed.csv.tmp")
        self._handle: IO[str] | None = None
        self._csv: Any = None
        self.count = 0
        self.problem = ""

    def write(self, rows: Iterable[tuple[int | None, str, str]]) -> None:
        for line, key, reason in rows:
            self.count += 1
            if self.problem:
                continue
            try:
                if self._csv is None:
                    self._handle = self._partial.open("w", encoding="utf-8", newline="")
                    self._csv = csv.writer(self._handle)
                    self._csv.writerow(self.HEADER)
                self._csv.writerow(
                    ("" if line is None else line, spreadsheet_safe(key), spreadsheet_safe(reason))
                )
            except OSError as error:
                self.problem = f"cannot write {self.path}: {error.strerror or error}"

    def finish(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
            if not self.problem:
                os.replace(self._partial, self.path)
        elif not self.count:
            with contextlib.suppress(OSError):
                self.path.unlink()

    def abandon(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        with contextlib.suppress(OSError):
            self._partial.unlink()


def part_rows(part: Part) -> int:
    """Every row of the input the part covers: those sent and those the tool could not send."""
    return part.rows + part.unsent


def part_failed(part: Part) -> int:
    """Rows neither applied nor counted as not found: failed here, failed there, or never reached."""
    return part_rows(part) - part.successful - part.not_found


def summary(parts: Sequence[Part], stream: TextIO) -> None:
    table = Table(box=box.SIMPLE if stream.isatty() else box.ASCII, show_footer=len(parts) > 1)
    totals = [
        sum(f(part) for part in parts) for f in (part_rows, _applied, _not_found, part_failed)
    ]
    table.add_column("part", footer="total")
    table.add_column("lines", no_wrap=True)
    for name, total in zip(("rows", "applied", "not found", "failed"), totals, strict=True):
        table.add_column(name, justify="right", footer=f"{total:,}")
    table.add_column("status")
    table.add_column("batch", no_wrap=True)
    for part in parts:
        lines = f"{part.first_line}-{part.last_line}" if part.first_line else ""
        counts = [f"{f(part):,}" for f in (part_rows, _applied, _not_found, part_failed)]
        # The server's words, as text: no control sequence, and no rich markup either.
        status, batch_id = Text(shown(part.status)), Text(shown(part.batch_id))
        table.add_row(str(part.number), lines, *counts, status, batch_id)
    # Never cut a batch id or a line range short: a narrow terminal wraps the lines instead.
    console = Console(file=stream)
    console.width = max(console.width, 120)
    console.print(table)


def _applied(part: Part) -> int:
    return part.successful


def _not_found(part: Part) -> int:
    return part.not_found
