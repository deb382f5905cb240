"""Progress on standard error: two bars on a terminal, a plain line every few seconds otherwise.

Everything the tool prints goes through :func:`shown` first, as much of it repeats what a
server said (messages, batch ids, statuses): a server, or a proxy in front of one, could
otherwise clear the screen, retitle the window or hide text with control sequences.

One measure is the input file's bytes sent so far, the other the rows the server has applied
(``consumedCount`` summed over the parts' batch statuses), each with its rate and an estimate
of the time left. Until the whole file is read, the rows' total is estimated from the bytes.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

MODES = ("auto", "bars", "log", "none")
LOG_EVERY_SECONDS = 5.0
RATE_WINDOW_SECONDS = 30.0


def shown(text: str) -> str:
    """``text`` with every character that is not printable (control characters, escape
    sequences' ``ESC``, bidirectional overrides, lone surrogates) written as its escape."""
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


class _Amount(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.speed or 0.0
        if task.fields.get("unit") == "bytes":
            total = decimal(int(task.total)) if task.total else "?"
            return Text(f"{decimal(int(task.completed))}/{total} {decimal(int(speed))}/s")
        total = f"{task.fields.get('about', '')}{int(task.total):,}" if task.total else "?"
        return Text(f"{int(task.completed):,}/{total} rows {speed:,.0f}/s")


class _Rate:
    """Rate over the last ``RATE_WINDOW_SECONDS``, for the plain log lines."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._samples: deque[tuple[float, float]] = deque()

    def add(self, value: float) -> None:
        now = self._clock()
        self._samples.append((now, value))
        while len(self._samples) > 2 and now - self._samples[1][0] > RATE_WINDOW_SECONDS:
            self._samples.popleft()

    def per_second(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (start, first), (end, last) = self._samples[0], self._samples[-1]
        return (last - first) / (end - start) if end > start else 0.0


class Display:
    def __init__(
        self,
        mode: str,
        stream: TextIO,
        *,
        file_size: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode == "auto":
            mode = "bars" if stream.isatty() else "log"
        self.mode = mode
        self.stream = stream
        self.file_size = file_size
        self._clock = clock
        self._lock = threading.Lock()
        self._sent = 0.0
        self._applied = 0
        self._rows_total = 0
        self._rows_estimated = True
        self._sent_rate = _Rate(clock)
        self._applied_rate = _Rate(clock)
        self._sent_rate.add(0)  # rates count from the start: reading the file takes time too
        self._applied_rate.add(0)
        self._last_line = clock()
        self._progress: Progress | None = None
        if mode == "bars":
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=20),
                TaskProgressColumn(),
                _Amount(),
                TimeRemainingColumn(),
                console=Console(file=stream),
                speed_estimate_period=RATE_WINDOW_SECONDS,
            )
            self._bytes_task: TaskID = self._progress.add_task(
                "Sending ", total=max(file_size, 1), unit="bytes"
            )
            self._rows_task: TaskID = self._progress.add_task(
                "Applying", total=None, unit="rows", about="~"
            )
            self._progress.start()

    def sent(self, input_bytes: float) -> None:
        with self._lock:
            self._sent = input_bytes
            self._sent_rate.add(input_bytes)
            if self._progress is not None:
                self._progress.update(self._bytes_task, completed=input_bytes)
            self._maybe_log()

    def rows(self, applied: int, total: int, *, estimated: bool) -> None:
        with self._lock:
            self._applied, self._rows_total, self._rows_estimated = applied, total, estimated
            self._applied_rate.add(applied)
            if self._progress is not None:
                self._progress.update(
                    self._rows_task,
                    completed=applied,
                    total=max(total, applied) or None,
                    about="~" if estimated else "",
                )
            self._maybe_log()

    def note(self, text: str) -> None:
        """A line of its own: a retry, a part sent, a warning."""
        text = shown(text)
        with self._lock:
            if self._progress is not None:
                self._progress.console.print(text, markup=False, highlight=False)
            else:
                print(text, file=self.stream, flush=True)

    def _maybe_log(self) -> None:
        if self.mode == "log" and self._clock() - self._last_line >= LOG_EVERY_SECONDS:
            self._log_line()

    def _log_line(self) -> None:
        self._last_line = self._clock()
        share = self._sent / self.file_size if self.file_size else 1.0
        about = "~" if self._rows_estimated else ""
        rate = self._applied_rate.per_second()
        of_total = f" of {about}{self._rows_total:,}" if self._rows_total else ""
        line = (
            f"sent {decimal(int(self._sent))} of {decimal(self.file_size)} ({share:.0%}),"
            f" {decimal(int(self._sent_rate.per_second()))}/s;"
            f" applied {self._applied:,}{of_total} rows, {rate:,.0f} rows/s"
        )
        left = self._rows_total - self._applied
        if rate > 0 and left > 0:
            line += f", about {_duration(left / rate)} left"
        print(line, file=self.stream, flush=True)

    def close(self, *, final_line: bool = True) -> None:
        """Stop the bars, or print the last log line (``final_line``)."""
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None
            elif self.mode == "log" and final_line:
                self._log_line()
                self.mode = "none"


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
