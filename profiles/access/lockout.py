"""How long a locked-out sign-in stays locked (django-axes' cool-off).

The management API tells a locked-out caller in Adobe's error shape, and the sign-in pages
show a page (``profiles.pages.lockout``); both say how long the lock lasts.
"""

from __future__ import annotations

from axes.helpers import get_cool_off


def cool_off_seconds(request: object) -> int:
    """The seconds the lock lasts; ``request`` is the one axes judged (settings may use it)."""
    cool_off = get_cool_off(request)
    return int(cool_off.total_seconds()) if cool_off else 0
