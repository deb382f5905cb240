"""Group commit: the writes of one process that arrive together share one transaction
(docs/operations.md#group-commit).

On SQLite one writer is let in at a time, and each passes the writer lock, opens and commits
a transaction and appends its pages to the WAL on its own. A :class:`GroupCommitter` lets
the first caller that finds no transaction of the group in progress lead: it takes every
piece of work queued meanwhile, runs each under a savepoint of one transaction on its own
database connection, commits once, and only then wakes each caller with its own answer.
Work that arrives while the leader commits waits for the next transaction, led by the first
of the waiters.

A piece of work that fails fails alone: its savepoint is rolled back and its caller gets
its own error, while the rest of the group goes on. Should the transaction itself break
after such a failure, the group is run again without the work that failed. A fault of the
database (busy past the busy timeout, a full disk: ``profiles.rules.faults``) fails the
whole transaction, so every caller of the group is answered with it: nothing was written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from django.db import connection, transaction

from profiles.rules import faults


class _Broken(Exception):
    """The group's transaction cannot go on after one of its pieces of work failed."""


@dataclass(slots=True, eq=False)
class _Entry:
    work: Callable[[], object]
    woken: threading.Event = field(default_factory=threading.Event)
    answered: bool = False
    result: object = None
    error: BaseException | None = None

    def answer(self) -> object:
        if self.error is not None:
            raise self.error
        return self.result


class GroupCommitter:
    """The queue of one process's grouped writes; see the module docstring."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._queue: list[_Entry] = []
        self._leading = False  # a leader is running a group's transaction

    def run[T](self, work: Callable[[], T], *, patience: float) -> T:
        """Run ``work`` in the next group's transaction and return its result once that
        transaction has committed; raise its own error, or the group's fault.

        A caller still queued after ``patience`` seconds (the busy timeout) gives up with
        the busy error, as a writer waiting that long for the writer lock does; once its
        work is taken into a transaction it waits for that transaction's end.
        """
        entry = _Entry(work)
        with self._guard:
            self._queue.append(entry)
            follows = self._leading
            self._leading = True
        if follows:
            self._wait(entry, patience)
        if not entry.answered:  # the first caller, or the waiter woken to lead
            self._lead()
        return cast(T, entry.answer())

    def _wait(self, entry: _Entry, patience: float) -> None:
        if entry.woken.wait(patience):
            return
        with self._guard:
            if not entry.woken.is_set() and entry in self._queue:
                self._queue.remove(entry)
                raise faults.busy_error()
        entry.woken.wait()

    def _lead(self) -> None:
        with self._guard:
            group, self._queue = self._queue, []
        try:
            self._commit(group)
        except BaseException as error:  # the leader itself was interrupted
            for entry in group:
                if not entry.answered:
                    entry.answered, entry.result, entry.error = True, None, error
            raise
        finally:
            with self._guard:
                if self._queue:
                    self._queue[0].woken.set()  # not answered: it leads the next group
                else:
                    self._leading = False
            for entry in group:
                entry.woken.set()

    def _commit(self, group: list[_Entry]) -> None:
        pending = group
        while pending:
            failed: list[_Entry] = []
            try:
                with transaction.atomic():
                    _apply_each(pending, failed)
            except Exception as error:
                if not failed or faults.fault_error(error) is not None:
                    for entry in pending:  # none of them was written
                        entry.answered, entry.result, entry.error = True, None, error
                    return
                # The transaction broke after work of the group failed: the rest runs again
                # without it, which is answered with its own error.
                for entry in failed:
                    entry.answered = True
                pending = [entry for entry in pending if entry not in failed]
            else:
                for entry in pending:
                    entry.answered = True
                return


def _apply_each(pending: list[_Entry], failed: list[_Entry]) -> None:
    """Run each piece of work under a savepoint; one that fails is rolled back alone."""
    for entry in pending:
        try:
            with transaction.atomic():
                entry.result, entry.error = entry.work(), None
        except Exception as error:
            if faults.fault_error(error) is not None:
                raise
            entry.result, entry.error = None, error
            failed.append(entry)
            if connection.needs_rollback:
                # Its savepoint could not be rolled back: the transaction cannot go on.
                raise _Broken from error
