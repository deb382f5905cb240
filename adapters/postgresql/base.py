"""Django's PostgreSQL backend, checking a kept connection only after it has been idle.

``ENGINE = "adapters.postgresql"`` (targetadmin/settings.py). With ``CONN_HEALTH_CHECKS``
Django sends ``SELECT 1`` at the start of every request that reuses a connection: one more
round trip for every profile API call, whose own work is one or two queries. A connection
that answered a request less than ``HEALTH_CHECK_AFTER_IDLE_SECONDS`` ago is not checked
again; one that sat idle longer is, as before, and replaced when the server has dropped it
(docs/operations.md#database-connections).
"""

from __future__ import annotations

import time

from django.db.backends.postgresql import base

# Servers and proxies drop connections that sit idle for minutes, not seconds; a connection
# in use within the last second is taken to be open still.
HEALTH_CHECK_AFTER_IDLE_SECONDS = 1.0


class DatabaseWrapper(base.DatabaseWrapper):
    # When a request last finished with this connection (time.monotonic()).
    last_request_end: float | None = None

    def close_if_unusable_or_obsolete(self) -> None:
        # Django calls this as each request starts and as it finishes.
        now = time.monotonic()
        recent = self.last_request_end is not None and (
            now - self.last_request_end < HEALTH_CHECK_AFTER_IDLE_SECONDS
        )
        self.last_request_end = now
        super().close_if_unusable_or_obsolete()
        if recent and self.connection is not None:
            self.health_check_done = True

    def connect(self) -> None:
        super().connect()
        self.last_request_end = None
