"""Faults of the machine, answered so that a caller knows to retry and nothing is half done.

**A busy database.** SQLite lets one writer in at a time. A writer waits up to
``SQLITE_BUSY_TIMEOUT_SECONDS`` for the lock (the driver keeps retrying for that long) and
then fails with "database is locked". Every change runs in a transaction that takes the
write lock at ``BEGIN`` (``transaction_mode`` IMMEDIATE), so a request that gives up has
written nothing and may simply be sent again: 503 with ``Retry-After``.

**A full disk.** An upload that cannot be stored (``ENOSPC``, a quota, or SQLite's "database
or disk is full") is removed as far as it got and no batch is created: 507 with
``Retry-After``.

The profile APIs and the management API answer in their own envelopes
(``profiles.api_auth``, ``profiles.admin_api.endpoint``). Pages get the busy page from
``server_error``, the project's ``handler500``, which Django calls for any exception a view
or a middleware left unhandled (a session save that meets the lock too).
"""

from __future__ import annotations

import errno
import sys

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.views import defaults

from profiles.responses import ApiError

BUSY_RETRY_AFTER_SECONDS = 5
BUSY_MESSAGE = (
    f"The database is busy and nothing was changed; retry after {BUSY_RETRY_AFTER_SECONDS} seconds."
)
DISK_FULL_RETRY_AFTER_SECONDS = 300
DISK_FULL_MESSAGE = (
    "The server has no room to store this request and nothing of it was kept; retry later."
)
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def _sqlite_error_name(error: BaseException) -> str:
    name = getattr(error.__cause__, "sqlite_errorname", "")
    return name if isinstance(name, str) else ""


def is_database_busy(error: BaseException) -> bool:
    """True for SQLite's "database is locked" and "database table is locked"."""
    if not isinstance(error, OperationalError):
        return False
    return _sqlite_error_name(error).startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


def is_disk_full(error: BaseException) -> bool:
    """True for "no space left on device", an exceeded quota, and SQLite's SQLITE_FULL."""
    if isinstance(error, OperationalError):
        return _sqlite_error_name(error).startswith("SQLITE_FULL")
    return isinstance(error, OSError) and error.errno in _DISK_FULL_ERRNOS


def busy_error() -> ApiError:
    return ApiError(
        503,
        BUSY_MESSAGE,
        code="database_busy",
        headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
    )


def disk_full_error() -> ApiError:
    return ApiError(
        507,
        DISK_FULL_MESSAGE,
        code="insufficient_storage",
        headers={"Retry-After": str(DISK_FULL_RETRY_AFTER_SECONDS)},
    )


def api_error_for(error: BaseException) -> ApiError | None:
    """The answer to a machine fault, or None when ``error`` is not one."""
    if is_database_busy(error):
        return busy_error()
    if is_disk_full(error):
        return disk_full_error()
    return None


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: the busy page for a busy database, Django's 500 page otherwise."""
    error = sys.exc_info()[1]
    if error is None or not is_database_busy(error):
        return defaults.server_error(request)
    # Rendered without the request, like Django's own error pages: nothing here may need
    # the database that just refused.
    page = loader.render_to_string("503.html", {"message": BUSY_MESSAGE})
    return HttpResponse(page, status=503, headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)})
