"""Failure budgets per caller address: the one counter behind every authentication throttle.

A :class:`FailureBudget` counts refused attempts from one address (an IPv6 address by its
/64, ``addresses.counted_as``) in fixed windows kept in Django's default cache (the database
cache, shared by every worker process and host). Past its limit within a window, the address
waits until the window ends. Fixed windows keep this to a few cache operations, all on the
refused path: an accepted attempt never touches the cache.

Two budgets use it: refused profile API calls (``PROFILE_API_FAILURES``,
docs/api.md#throttling) and failed HTTP Basic sign-ins to the management API
(``BASIC_SIGN_IN_FAILURES``, docs/management-api.md#throttling-by-address), checked before
any password is hashed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from profiles.access.addresses import counted_as


@dataclass(frozen=True, slots=True)
class FailureBudget:
    """Failures counted under ``scope``; limit and window are read from the named settings."""

    scope: str
    limit_setting: str
    window_setting: str

    def _window(self, address: str, now: float | None) -> tuple[str, int, int, float]:
        window = int(getattr(settings, self.window_setting))
        now = time.time() if now is None else now
        bucket = int(now // window)
        return f"{self.scope}:{counted_as(address)}:{bucket}", window, bucket, now

    def _wait(self, failures: int, window: int, bucket: int, now: float) -> int | None:
        if failures <= int(getattr(settings, self.limit_setting)):
            return None
        return max(1, (bucket + 1) * window - int(now))

    def count(self, address: str, now: float | None = None) -> int | None:
        """Count one failure from ``address``; seconds to wait once past the limit, else None."""
        key, window, bucket, now = self._window(address, now)
        cache.add(key, 0, timeout=window)
        try:
            failures = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=window)
            failures = 1
        return self._wait(failures, window, bucket, now)

    def spent(self, address: str, now: float | None = None) -> int | None:
        """Seconds to wait if ``address`` has used up its budget in this window, else None.

        Counts nothing: the check a costly attempt makes before it starts.
        """
        key, window, bucket, now = self._window(address, now)
        return self._wait(int(cache.get(key, 0)) + 1, window, bucket, now)


PROFILE_API_FAILURES = FailureBudget(
    "profile-api:auth-failures",
    "PROFILE_API_AUTH_FAILURE_LIMIT",
    "PROFILE_API_AUTH_FAILURE_WINDOW_SECONDS",
)
BASIC_SIGN_IN_FAILURES = FailureBudget(
    "management-api:basic-failures",
    "MANAGEMENT_API_BASIC_FAILURE_LIMIT",
    "MANAGEMENT_API_BASIC_FAILURE_WINDOW_SECONDS",
)
