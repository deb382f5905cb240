"""Faults of the machine, answered so that a caller knows to retry and nothing is half done.

**A busy database.** SQLite lets one writer in at a time. A writer waits up to
``SQLITE_BUSY_TIMEOUT_SECONDS`` for the lock (the driver keeps retrying for that long) and
then fails with "database is locked". Every change runs in a transaction that takes the
write lock at ``BEGIN`` (``transaction_mode`` IMMEDIATE), so a request that gives up has
written nothing and may simply be sent again: 503 with ``Retry-After``.

**A slow body.** A request body that stops arriving for longer than the server's body
timeout (docs/operations.md#slow-clients-and-nginx-in-front) is answered 408; nothing of it
was applied.

**A full disk.** An upload that cannot be stored (``ENOSPC``, a quota, SQLite's "database
or disk is full", PostgreSQL's ``disk_full``) is removed as far as it got and no batch is
created: 507 with ``Retry-After``.

The profile APIs and the management API answer in their own envelopes
(``profiles.api.gate``, ``profiles.api.management.endpoint``). Pages get the busy page from
``profiles.pages.errors.server_error``, the project's ``handler500``.
"""

from __future__ import annotations

import errno

from django.db import OperationalError

from profiles.rules.errors import ErrorCode, ProductError

BUSY_RETRY_AFTER_SECONDS = 5
BUSY_MESSAGE = (
    f"The database is busy and nothing was changed; retry after {BUSY_RETRY_AFTER_SECONDS} seconds."
)
READ_TIMEOUT_MESSAGE = (
    "The request body arrived too slowly: the server stopped waiting and nothing was changed."
)
DISK_FULL_RETRY_AFTER_SECONDS = 300
DISK_FULL_MESSAGE = (
    "The server has no room to store this request and nothing of it was kept; retry later."
)
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_POSTGRESQL_DISK_FULL = "53100"  # SQLSTATE disk_full: "could not extend file"


def _sqlite_error_name(error: BaseException) -> str:
    name = getattr(error.__cause__, "sqlite_errorname", "")
    return name if isinstance(name, str) else ""


def is_database_busy(error: BaseException) -> bool:
    """True for SQLite's "database is locked" and "database table is locked"."""
    if not isinstance(error, OperationalError):
        return False
    return _sqlite_error_name(error).startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


def is_disk_full(error: BaseException) -> bool:
    """True for "no space left on device", an exceeded quota, SQLite's SQLITE_FULL and
    PostgreSQL's disk_full."""
    if isinstance(error, OperationalError):
        if getattr(error.__cause__, "sqlstate", None) == _POSTGRESQL_DISK_FULL:
            return True
        return _sqlite_error_name(error).startswith("SQLITE_FULL")
    return isinstance(error, OSError) and error.errno in _DISK_FULL_ERRNOS


def busy_error() -> ProductError:
    return ProductError(ErrorCode.DATABASE_BUSY, BUSY_MESSAGE, retry_after=BUSY_RETRY_AFTER_SECONDS)


def disk_full_error() -> ProductError:
    return ProductError(
        ErrorCode.INSUFFICIENT_STORAGE, DISK_FULL_MESSAGE, retry_after=DISK_FULL_RETRY_AFTER_SECONDS
    )


def is_read_timeout(error: BaseException) -> bool:
    """True when reading the request body waited past the server's body timeout.

    The server raises ``TimeoutError``; Django hands it on as ``UnreadablePostError``, an
    ``OSError`` caused by it (once or twice over, as ``request.body`` re-raises ``read()``'s).
    """
    cause: BaseException | None = error
    while isinstance(cause, OSError):
        if isinstance(cause, TimeoutError):
            return True
        cause = cause.__cause__
    return False


def fault_error(error: BaseException) -> ProductError | None:
    """The answer to a machine fault, or None when ``error`` is not one."""
    if is_read_timeout(error):
        return ProductError(ErrorCode.REQUEST_TIMEOUT, READ_TIMEOUT_MESSAGE)
    if is_database_busy(error):
        return busy_error()
    if is_disk_full(error):
        return disk_full_error()
    return None
