"""How long a token lives: the Expires In choices and the "time remaining" wording.

The choices are the ``TOKEN_EXPIRY_CHOICES_DAYS`` setting (docs/screen.md#the-card); the
screen, the management API and the command line all offer exactly these.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings


def choices() -> tuple[int, ...]:
    """The lifetimes a token may be given, in days."""
    return tuple(settings.TOKEN_EXPIRY_CHOICES_DAYS)


def default_days() -> int:
    return int(settings.TOKEN_DEFAULT_EXPIRY_DAYS)


def choices_text() -> str:
    """The choices as a reader sees them in an error: "1, 7, 30, 90, 180, 365"."""
    return ", ".join(str(days) for days in choices())


def label(days: int) -> str:
    """ "1 day", "90 days": how the screen offers a lifetime."""
    return plural(days, "day")


def plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def describe_remaining(remaining: timedelta) -> str:
    """``timedelta(days=62, hours=9, minutes=53)`` → "62 days, 9 hours, 53 minutes"."""
    minutes = max(int(remaining.total_seconds()), 0) // 60
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return ", ".join(
        (plural(days, "day"), plural(hours, "hour"), plural(minutes, "minute")),
    )
