"""Django's SQLite backend, with writers queued on :mod:`adapters.sqlite.writers`.

``ENGINE = "adapters.sqlite"`` (targetadmin/settings.py). A connection to a database
file takes the process's writer lock before every write transaction (``BEGIN IMMEDIATE``,
which ``transaction.atomic`` issues) and before every statement that may write outside
one (an ORM ``update()`` or a single ``save()`` in autocommit mode), and releases it once
the transaction is over: committed, rolled back, or the connection closed. Reads never take
it. An in-memory database (the tests') has one process only and takes none.

A database file is created readable by its owner only (adapters/local_state.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.db.backends.sqlite3 import base

from adapters.local_state import private_sqlite_files
from adapters.sqlite.writers import WriterLock, writer_lock

# Statements that never write, or that only open or end a transaction (the lock is taken
# for the transaction itself).
_NOT_A_WRITE = re.compile(
    r"\s*(?:SELECT|PRAGMA|EXPLAIN|BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE
)


class DatabaseWrapper(base.DatabaseWrapper):
    writers: WriterLock | None = None
    writing = False  # this connection holds the writer lock

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        if not self.is_in_memory_db():
            # Readable by its owner only, and so its WAL and shared-memory files.
            private_sqlite_files(Path(self.settings_dict["NAME"]))
        connection = super().get_new_connection(conn_params)
        if not self.is_in_memory_db():
            self.writers = writer_lock(str(self.settings_dict["NAME"]))
            self.busy_timeout = float(conn_params.get("timeout", 5.0))
        return connection

    def create_cursor(self, name: str | None = None) -> Any:
        cursor = self.connection.cursor(factory=WriterCursor)
        cursor.database = self
        return cursor

    def take_writer_lock(self) -> None:
        if self.writers is not None and not self.writing:
            self.writers.acquire(self.busy_timeout)
            self.writing = True

    def release_writer_lock_when_done(self) -> None:
        """Release the lock unless a transaction is still open on the connection."""
        if self.connection is None or not self.connection.in_transaction:
            self._release_writer_lock()

    def _release_writer_lock(self) -> None:
        if self.writing and self.writers is not None:
            self.writing = False
            self.writers.release()

    def _start_transaction_under_autocommit(self) -> None:
        with self.wrap_database_errors:
            self.take_writer_lock()
            try:
                if self.queries_logged:  # through a cursor, so that it is seen and counted
                    super()._start_transaction_under_autocommit()  # type: ignore[misc]
                else:  # the same statement, without a cursor wrapper to build
                    mode = self.transaction_mode  # type: ignore[attr-defined]
                    self.connection.execute("BEGIN" if mode is None else f"BEGIN {mode}")
            finally:
                self.release_writer_lock_when_done()

    def _commit(self) -> None:
        try:
            super()._commit()  # type: ignore[misc]
        finally:
            self.release_writer_lock_when_done()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]
        finally:
            self.release_writer_lock_when_done()

    def _set_autocommit(self, autocommit: bool) -> None:
        try:
            super()._set_autocommit(autocommit)  # type: ignore[misc]
        finally:
            self.release_writer_lock_when_done()

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]
        finally:
            self._release_writer_lock()


class WriterCursor(base.SQLiteCursorWrapper):
    """Takes the writer lock around a statement that may write outside a transaction."""

    database: DatabaseWrapper

    def execute(self, query: str, params: Any = None) -> Any:
        if self._outside_transaction_write(query):
            return self._locked(super().execute, query, params)
        return super().execute(query, params)

    def executemany(self, query: str, param_list: Any) -> Any:
        if self._outside_transaction_write(query):
            return self._locked(super().executemany, query, param_list)
        return super().executemany(query, param_list)

    def _outside_transaction_write(self, query: str) -> bool:
        database = self.database
        return (
            database.writers is not None
            and not database.writing
            and not self.connection.in_transaction
            and not _NOT_A_WRITE.match(query)
        )

    def _locked(self, run: Any, query: str, params: Any) -> Any:
        self.database.take_writer_lock()
        try:
            return run(query, params)
        finally:
            self.database.release_writer_lock_when_done()
