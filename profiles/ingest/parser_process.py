"""A batch's parser process: parsing on a core of its own, ahead of the writer.

The worker's process is the batch's writer: it reads a block of the stored file, hands it
to the parser process and, while that parses, validates and encodes it, writes the chunk
before it (docs/performance.md#batch-files). One block is in the parser and one chunk in
the writer at a time, so memory stays flat however long the file.

The parser is forked from the writer and touches neither the database nor the stored file:
it turns what it is given into what it returns, nothing else. Killed, it is started again
and given the block it held; the writer killed, the parser finds its pipe closed and ends.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

# The parsers of one process's threads (the writers of batches running at once) take turns
# to start and stop, and each starts holding only its own end of its own pipe:
# - A fork copies every open descriptor. A parser that kept another writer's end of that
#   writer's pipe would hold the pipe open after the writer closed it or died, so a parser
#   closes every writer's end it was born with, and a pipe's parser end is open in the
#   writer's process only while its parser starts, under the lock.
# - ``Process.start`` reaps every finished child of the process, whichever thread started
#   it, and a child reaped by another thread reads as running until that thread has stored
#   its exit code; whether a parser has ended is read under the lock too.
_LIFECYCLE = threading.Lock()
_WRITERS_ENDS: set[Connection] = set()  # of the parsers running, under _LIFECYCLE

# Starts of the parser for one block before the batch's attempt fails: a block that kills
# its parser every time is not retried forever.
MOST_STARTS_PER_BLOCK = 3


class ParserDied(RuntimeError):
    """The parser process died on the same block ``MOST_STARTS_PER_BLOCK`` times."""


@dataclass(frozen=True, slots=True)
class _Raised:
    """The parser's work raised: the writer raises it again."""

    error: BaseException


def _serve(pipe: Connection, work: Callable[[Any], Any]) -> None:
    # The fork copied the writers' ends of the pipes too: closed here, so that each pipe
    # closes when its writer's own end does (the writer done, or killed).
    for writers_end in _WRITERS_ENDS:
        writers_end.close()
    while True:
        try:
            item = pipe.recv()
        except (EOFError, OSError):
            return  # the writer is gone
        try:
            result = work(item)
        except Exception as error:  # handed to the writer, which raises it
            result = _Raised(error)
        try:
            pipe.send(result)
        except OSError:
            return
        del item, result


class ParserProcess[In, Out]:
    """``work`` run on each submitted item in a forked process, one item in flight.

    ``submit`` hands an item over and returns at once; ``result`` waits for its result.
    Used as a context manager, the process ends with the block.
    """

    def __init__(self, work: Callable[[In], Out]) -> None:
        self._work = work
        self._process: Any = None
        self._pipe: Connection | None = None
        self._pending: In | None = None
        self._has_pending = False

    @property
    def pid(self) -> int | None:
        return None if self._process is None else int(self._process.pid)

    def _start(self) -> None:
        context = multiprocessing.get_context("fork")
        with _LIFECYCLE:
            mine, theirs = context.Pipe()
            _WRITERS_ENDS.add(mine)
            process = context.Process(target=_serve, args=(theirs, self._work), daemon=True)
            process.start()
            theirs.close()
        self._process, self._pipe = process, mine

    def _stop(self) -> None:
        if self._pipe is not None:
            with _LIFECYCLE:
                _WRITERS_ENDS.discard(self._pipe)
                self._pipe.close()
            self._pipe = None
        if self._process is not None:
            self._process.join(timeout=5)
            with _LIFECYCLE:
                running = self._process.is_alive()
                if running:
                    self._process.kill()
            if running:
                self._process.join()
            with _LIFECYCLE:
                self._process.close()
            self._process = None

    def __enter__(self) -> ParserProcess[In, Out]:
        self._start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop()

    def submit(self, item: In) -> None:
        if self._has_pending:
            raise RuntimeError("one item in flight at a time: take its result first")
        self._pending, self._has_pending = item, True
        # If the parser died, ``result`` starts another and hands the item over again.
        with contextlib.suppress(OSError):
            self._pipe_or_fail().send(item)

    def result(self) -> Out:
        if not self._has_pending:
            raise RuntimeError("nothing submitted")
        for _ in range(MOST_STARTS_PER_BLOCK):
            try:
                result = self._pipe_or_fail().recv()
            except (EOFError, OSError):
                self._stop()
                self._start()
                with contextlib.suppress(OSError):
                    self._pipe_or_fail().send(self._pending)
                continue
            self._pending, self._has_pending = None, False
            if isinstance(result, _Raised):
                raise result.error
            out: Out = result
            return out
        raise ParserDied(f"the batch's parser process died {MOST_STARTS_PER_BLOCK} times")

    def _pipe_or_fail(self) -> Connection:
        if self._pipe is None:
            raise ParserDied("the batch's parser process is not running")
        return self._pipe
