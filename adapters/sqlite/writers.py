"""One writer at a time on a SQLite file, queued in the kernel (docs/operations.md#sqlite-writers).

SQLite lets one writer in at a time. A writer that finds the write lock taken does not wait
in a queue: its busy handler sleeps and tries again, in growing steps (1, 2, 5, 10 … up to
100 ms), so under concurrent writes a short transaction can wait ten times longer than the
one it waited for, and the slowest of them far longer.

Every writer of this project takes :class:`WriterLock` first: a ``threading.Lock`` for the
threads of a process, then an exclusive ``flock`` on ``<database>-writers`` for the
processes (gunicorn's workers, the task worker, commands). A waiter sleeps in the kernel and
is woken the moment the holder releases, so writers pass one after another without a busy
handler ever sleeping; a process that dies holding it loses it with its file descriptors.
SQLite's own lock is still taken (``BEGIN IMMEDIATE``) and stays what keeps the data safe:
the queue only decides who asks for it next.

Writers of one process that queue behind each other are let in one after another while the
process keeps the file locked (at most ``HAND_OVER_SECONDS`` in a row): waking a thread of the
same process is quicker than waking another process, and a process whose writers were let in
one per unlock got the file once per transaction of the batch worker, a few dozen times a
second, however many single updates were waiting.

A wait longer than the busy timeout gives up with SQLite's own "database is locked" error,
so the caller answers 503 as for any busy database (``profiles.rules.faults``). ``flock``
itself cannot time out, so a wait that may block is handed to one daemon thread per lock,
and the asking thread waits for it with a timeout; a wait given up on releases the lock as
soon as it is granted.

How long each writer waited for the lock is told to :data:`wait_observer` when one is set
(the metrics set it, docs/operations.md#metrics): this module knows nothing of them.
"""

from __future__ import annotations

import fcntl
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# How long a process may keep the file locked while handing the lock from one of its
# writers to the next: long enough for a burst of single updates to pass together, short
# enough that the other processes (and the batch worker) wait little for it.
HAND_OVER_SECONDS = 0.005


# Told the seconds each writer waited for the lock, once it has it; ``None``: nobody asks.
wait_observer: Callable[[float], None] | None = None


def lock_path(database_name: str) -> str:
    return f"{database_name}-writers"


class WriterBusy(sqlite3.OperationalError):
    """The writer lock stayed taken past the busy timeout: SQLite's "database is locked"."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"database is locked (waited {seconds:g} s for the other writers)")
        self.sqlite_errorcode = sqlite3.SQLITE_BUSY
        self.sqlite_errorname = "SQLITE_BUSY"


@dataclass(slots=True, eq=False)
class _Wait:
    """One blocking ``flock`` handed to the waiter thread."""

    done: threading.Event = field(default_factory=threading.Event)
    guard: threading.Lock = field(default_factory=threading.Lock)
    taken: bool = False
    abandoned: bool = False
    error: OSError | None = None


class WriterLock:
    """The writer queue of one database file, shared by the threads of a process."""

    def __init__(self, path: str, *, hand_over_seconds: float = HAND_OVER_SECONDS) -> None:
        self.path = path
        self.hand_over_seconds = hand_over_seconds
        self._threads = threading.Lock()
        self._fd = -1
        self._pid = -1
        self._waits: queue.SimpleQueue[_Wait] = queue.SimpleQueue()
        self._waiter: threading.Thread | None = None
        self._pending = 0  # waits handed to the waiter thread and not yet answered
        self._pending_guard = threading.Lock()
        # Threads of this process waiting for ``_threads``; and whether, and since when,
        # this process holds the file for them. Counted and handed over under ``_queue``.
        self._queue = threading.Lock()
        self._queued = 0
        self._file_held = False
        self._file_since = 0.0

    def acquire(self, timeout: float) -> None:
        """Become the one writer, or raise :class:`WriterBusy` after ``timeout`` seconds."""
        started = time.monotonic()
        with self._queue:
            self._queued += 1
        taken = self._threads.acquire(timeout=timeout)
        with self._queue:
            self._queued -= 1
            # A writer handing over counted this thread as waiting: take what it left.
            taken = taken or self._threads.acquire(blocking=False)
        if not taken:
            raise WriterBusy(timeout)
        if not self._file_held:  # else handed over by the previous writer of this process
            try:
                self._lock_file(timeout - (time.monotonic() - started), timeout)
            except BaseException:
                self._threads.release()
                raise
            self._file_held, self._file_since = True, time.monotonic()
        if wait_observer is not None:
            wait_observer(time.monotonic() - started)

    def release(self) -> None:
        """Let the next writer in: another thread of this process, while threads of this
        process are waiting and for at most ``hand_over_seconds`` in a row, keeping the
        file locked; otherwise whoever is first to lock the file."""
        with self._queue:
            if self._queued and time.monotonic() - self._file_since < self.hand_over_seconds:
                self._threads.release()
                return
            self._file_held = False
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                self._threads.release()

    def _file(self) -> int:
        if self._pid != os.getpid():  # a forked child opens its own
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._pid = os.getpid()
            self._waiter = None
            self._waits = queue.SimpleQueue()
            self._pending = 0
        return self._fd

    def _lock_file(self, remaining: float, timeout: float) -> None:
        fd = self._file()
        if not self._pending:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
        wait = _Wait()
        with self._pending_guard:
            self._pending += 1
        self._start_waiter()
        self._waits.put(wait)
        granted = wait.done.wait(max(remaining, 0.0))
        with wait.guard:
            if not (granted or wait.taken):
                wait.abandoned = True
                raise WriterBusy(timeout)
        if wait.error is not None:
            raise wait.error

    def _start_waiter(self) -> None:
        if self._waiter is None:
            self._waiter = threading.Thread(
                target=self._wait_for_file, name=f"writer-lock {self.path}", daemon=True
            )
            self._waiter.start()

    def _wait_for_file(self) -> None:
        fd, waits = self._fd, self._waits
        while True:
            wait = waits.get()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as error:
                wait.error = error
            with wait.guard:
                if wait.abandoned:
                    if wait.error is None:
                        fcntl.flock(fd, fcntl.LOCK_UN)
                else:
                    wait.taken = wait.error is None
            with self._pending_guard:
                self._pending -= 1
            wait.done.set()


_LOCKS: dict[str, WriterLock] = {}
_LOCKS_GUARD = threading.Lock()


def writer_lock(database_name: str) -> WriterLock:
    """The process's one :class:`WriterLock` for the database file ``database_name``."""
    path = lock_path(os.path.abspath(database_name))
    with _LOCKS_GUARD:
        found = _LOCKS.get(path)
        if found is None:
            found = _LOCKS[path] = WriterLock(path)
        return found
