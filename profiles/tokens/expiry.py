"""How long a token lives: the Expires In choices, the grace periods a replaced token may
keep, and the "time remaining" and "last used" wording.

The expiry choices are the ``TOKEN_EXPIRY_CHOICES_DAYS`` setting (docs/screen.md#the-card);
the screen, the management API and the command line all offer exactly these. A replaced
token keeps working for at most ``MAX_GRACE_SECONDS`` (docs/tokens.md#rotation-with-a-grace-period).
"""

from __future__ import annotations

from datetime import datetime, timedelta

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


# How long the current token keeps working after a re-generation: the screen's choices
# (Adobe's behaviour, "Immediately", first); the API and the command line take any number of
# seconds up to the longest.
GRACE_CHOICES_SECONDS: tuple[tuple[int, str], ...] = (
    (0, "Immediately"),
    (60 * 60, "In 1 hour"),
    (24 * 60 * 60, "In 24 hours"),
    (7 * 24 * 60 * 60, "In 7 days"),
)
MAX_GRACE_SECONDS = 7 * 24 * 60 * 60

# A token's last use is recorded at most once a minute (docs/tokens.md#last-used).
LAST_USED_RESOLUTION = timedelta(minutes=1)


def describe_ago(moment: datetime, now: datetime) -> str:
    """How long ago ``moment`` was, to the minute recorded uses allow: "within the last
    minute", "3 minutes ago", "5 hours ago", "12 days ago"."""
    elapsed = max(now - moment, timedelta(0))
    if elapsed < LAST_USED_RESOLUTION:
        return "within the last minute"
    minutes = int(elapsed.total_seconds()) // 60
    if minutes < 120:
        return f"{plural(minutes, 'minute')} ago"
    hours = minutes // 60
    if hours < 48:
        return f"{plural(hours, 'hour')} ago"
    return f"{plural(hours // 24, 'day')} ago"


def describe_last_used(used_at: datetime | None, address: str | None, now: datetime) -> str:
    """ "Last used 3 minutes ago from 203.0.113.5", or "Never used"."""
    if used_at is None:
        return "Never used"
    origin = f" from {address}" if address else ""
    return f"Last used {describe_ago(used_at, now)}{origin}"
