"""A busy database answers "try again shortly": never a 500, never half a change.

SQLite lets one writer in at a time. A writer waits up to ``SQLITE_BUSY_TIMEOUT_SECONDS`` for
the lock (the driver keeps retrying for that long) and then fails with "database is locked".
Every change runs in a transaction that takes the write lock at ``BEGIN``
(``transaction_mode`` IMMEDIATE), so a request that gives up has written nothing and may
simply be sent again. It is answered 503 with ``Retry-After``:

- by the profile APIs in their own envelope (``profiles.api_auth``);
- on pages by ``server_error``, the project's ``handler500``, which Django calls for any
  exception a view or a middleware left unhandled (a session save that meets the lock too).
"""

from __future__ import annotations

import sys

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.views import defaults

from profiles.responses import ApiError

RETRY_AFTER_SECONDS = 5
MESSAGE = (
    f"The database is busy and nothing was changed; retry after {RETRY_AFTER_SECONDS} seconds."
)


def is_database_busy(error: BaseException) -> bool:
    """True for SQLite's "database is locked" and "database table is locked"."""
    if not isinstance(error, OperationalError):
        return False
    name = getattr(error.__cause__, "sqlite_errorname", "")
    return isinstance(name, str) and name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


def busy_error() -> ApiError:
    return ApiError(
        503, MESSAGE, code="database_busy", headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: the busy page for a busy database, Django's 500 page otherwise."""
    error = sys.exc_info()[1]
    if error is None or not is_database_busy(error):
        return defaults.server_error(request)
    # Rendered without the request, like Django's own error pages: nothing here may need
    # the database that just refused.
    page = loader.render_to_string("503.html", {"message": MESSAGE})
    return HttpResponse(page, status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
