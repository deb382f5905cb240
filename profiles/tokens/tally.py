"""Token usage gathered in each process and written at most once a minute per token
(docs/tokens.md#usage).

The gate counts each call that presented a known token of its client (``count``), in this
process's memory: no query. A token's counts are written when a call for it, or the
process's writer thread (:func:`start_writer`), finds its last write a minute old or more
(:data:`WRITE_INTERVAL`; a token counted for the first time waits a minute too). The write
is one statement per token: an upsert of one row per UTC day that adds the counts to the
stored ones, so any number of processes write to the same rows without losing a call. A
failed write is logged with the counts it loses and never fails the call. When the process
stops in good order (gunicorn's ``worker_exit``), :meth:`Tally.write_all` writes what is
left; a process that dies loses at most its last minute of counts.
"""

from __future__ import annotations

import logging
import threading
from datetime import date, datetime, timedelta
from typing import Any

from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone

from profiles.store import reads
from profiles.tokens.models import ProfileToken
from profiles.tokens.permissions import Permission
from profiles.tokens.usage import (
    CALL_COUNTERS,
    COUNTERS,
    OUTCOME_COUNTER,
    PERMISSION_COUNTER,
    Outcome,
    TokenUsage,
    today,
)

logger = logging.getLogger(__name__)

WRITE_INTERVAL = timedelta(minutes=1)

Key = tuple[int, int | None]
"""Whose usage: the client and the integration (``None``: the client's own token)."""
Counts = dict[date, list[int]]
"""A token's pending counts per UTC day, in the order of ``usage.COUNTERS``."""


class Tally:
    """One process's counts not yet written, and when each token's were last written."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[Key, Counts] = {}
        self._since: dict[Key, datetime] = {}

    def count(
        self,
        token: ProfileToken,
        outcome: Outcome,
        needed: Permission | None = None,
        now: datetime | None = None,
    ) -> None:
        """Count a call ``token`` presented, decided as ``outcome``, that needed ``needed``;
        write the token's counts when its last write is a minute old."""
        now = now or timezone.now()
        key: Key = (token.client_id, token.integration_id)
        due: Counts | None = None
        with self._lock:
            counters = self._pending.setdefault(key, {}).setdefault(today(now), [0] * len(COUNTERS))
            counters[OUTCOME_COUNTER[outcome]] += 1
            # A call that needs no single permission (all of them) is counted by none.
            by_permission = PERMISSION_COUNTER.get(needed) if needed is not None else None
            if by_permission is not None:
                counters[by_permission] += 1
            since = self._since.setdefault(key, now)
            if now - since >= WRITE_INTERVAL:
                due = self._take(key, now)
        if due:
            write(key, due)

    def write_due(self, now: datetime | None = None) -> int:
        """Write every token's counts whose last write is a minute old; returns how many
        tokens were written."""
        now = now or timezone.now()
        with self._lock:
            keys = [key for key in self._pending if now - self._since[key] >= WRITE_INTERVAL]
            due = [(key, self._take(key, now)) for key in keys]
        return sum(write(key, counts) for key, counts in due)

    def write_all(self, now: datetime | None = None) -> int:
        """Write everything pending, however recent: the process is stopping."""
        now = now or timezone.now()
        with self._lock:
            due = [(key, self._take(key, now)) for key in list(self._pending)]
        return sum(write(key, counts) for key, counts in due)

    def _take(self, key: Key, now: datetime) -> Counts:
        self._since[key] = now
        return self._pending.pop(key, {})


def write(key: Key, counts: Counts) -> bool:
    """Add one token's ``counts`` to the stored ones in one statement; ``False`` (logged)
    when the database refused it."""
    client_id, integration_id = key
    days = sorted(counts)
    row = "(" + ", ".join(["%s"] * (3 + len(COUNTERS))) + ")"
    statement = UPSERT[integration_id is not None].replace("{rows}", ", ".join([row] * len(days)))
    params: list[Any] = []
    for day in days:
        params += [client_id, integration_id, connection.ops.adapt_datefield_value(day)]
        params += counts[day]
    try:
        # Its own transaction, or a savepoint in the caller's: a refused write leaves the
        # caller's transaction usable. Once a minute per token, the round trips are nothing.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, params)
    except DatabaseError:
        # The calls were answered; a busy or full database must not fail them for this.
        lost = sum(sum(c[:CALL_COUNTERS]) for c in counts.values())
        logger.warning(
            "could not write token usage: client=%s integration=%s lost=%s",
            client_id,
            integration_id if integration_id is not None else "-",
            lost,
            exc_info=True,
        )
        return False
    return True


def _statement(integration: bool) -> str:
    """The upsert of one token's days (``{rows}``), in SQL both databases accept: its
    conflict target names the partial unique index of an integration's usage or of the
    client's own token's (``usage.TokenUsage``)."""
    table = reads.table(TokenUsage)
    client, integration_id, day = (
        reads.column(TokenUsage, name) for name in ("client", "integration", "day")
    )
    target = (
        f"({integration_id}, {day}) WHERE {integration_id} IS NOT NULL"
        if integration
        else f"({client}, {day}) WHERE {integration_id} IS NULL"
    )
    adds = ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in COUNTERS)
    return (
        f"INSERT INTO {table} ({client}, {integration_id}, {day}, {', '.join(COUNTERS)}) "  # noqa: S608
        f"VALUES {{rows}} ON CONFLICT {target} DO UPDATE SET {adds}"
    )


# The two statements, by whether the token is an integration's.
UPSERT = {False: _statement(False), True: _statement(True)}

COUNTS = Tally()
"""This process's tally, which the gate counts into."""


class Writer(threading.Thread):
    """A process's writer thread: every ``interval`` it writes the counts due, so that the
    counts of a token no longer called reach the database within a minute."""

    def __init__(self, interval: timedelta = WRITE_INTERVAL) -> None:
        super().__init__(name="token-usage-writer", daemon=True)
        self.interval = interval
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.interval.total_seconds()):
            COUNTS.write_due()
            close_old_connections()

    def stop(self) -> None:
        self.stopping.set()
        self.join()


def start_writer(interval: timedelta = WRITE_INTERVAL) -> Writer:
    """Start this process's :class:`Writer` (gunicorn's ``post_worker_init`` does)."""
    writer = Writer(interval)
    writer.start()
    return writer
