"""How often each token was used, per UTC day: the stored half of docs/tokens.md#usage.

A token's usage is kept per client and integration: the client's own token (no
integration) is one series across its re-generations, as scripts see it as one token. Each
row holds one day's counters; processes add to them (``profiles.tokens.tally``), and rows
older than :data:`KEPT_DAYS` are pruned by the reminder sweep.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from django.db import models
from django.db.models import Q, QuerySet
from django.utils import timezone

from profiles.access.models import Client
from profiles.tokens import permissions
from profiles.tokens.integrations import Integration
from profiles.tokens.permissions import Permission

KEPT_DAYS = 90
DEFAULT_DAYS = 30


class Outcome(StrEnum):
    """What the gate decided for a call that presented a known token of its client."""

    ACCEPTED = "accepted"
    EXPIRED = "expired"
    REVOKED = "revoked"
    SCOPE = "scope"  # outside the token's permissions
    NETWORK = "network"  # from outside the client's allowed networks


REFUSALS = (Outcome.EXPIRED, Outcome.REVOKED, Outcome.SCOPE, Outcome.NETWORK)


# The counter columns, in the order a tally holds them.
COUNTERS: tuple[str, ...] = (
    "accepted",
    *(f"refused_{outcome}" for outcome in REFUSALS),
    *(f"{name}_calls" for name in permissions.NAMES),
)


# The first counters count calls; the others count the same calls again, by permission.
CALL_COUNTERS = 1 + len(REFUSALS)


# Where each outcome, and each single permission a call needs, is counted in COUNTERS; read
# on every counted call, so looked up rather than searched.
OUTCOME_COUNTER = {Outcome.ACCEPTED: 0} | {
    outcome: 1 + index for index, outcome in enumerate(REFUSALS)
}
PERMISSION_COUNTER = {
    permission: CALL_COUNTERS + index for index, permission in enumerate(Permission)
}


class TokenUsage(models.Model):
    """One token's calls on one UTC day. No integration: the client's own token."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="token_usage")
    integration = models.ForeignKey(
        Integration, null=True, blank=True, on_delete=models.CASCADE, related_name="usage"
    )
    day = models.DateField()
    accepted = models.PositiveBigIntegerField(default=0)
    refused_expired = models.PositiveBigIntegerField(default=0)
    refused_revoked = models.PositiveBigIntegerField(default=0)
    refused_scope = models.PositiveBigIntegerField(default=0)
    refused_network = models.PositiveBigIntegerField(default=0)
    # Every counted call, accepted or refused, by the permission it needed.
    fetch_calls = models.PositiveBigIntegerField(default=0)
    update_calls = models.PositiveBigIntegerField(default=0)
    batch_calls = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name_plural = "token usage"
        constraints = (
            # The targets of the writers' upsert (profiles.tokens.tally); a NULL integration
            # is never equal to another, hence one index for the client's own token.
            models.UniqueConstraint(
                fields=("client", "day"),
                condition=Q(integration__isnull=True),
                name="one_usage_row_per_client_token_day",
            ),
            models.UniqueConstraint(
                fields=("integration", "day"),
                condition=Q(integration__isnull=False),
                name="one_usage_row_per_integration_day",
            ),
        )

    def __str__(self) -> str:
        return f"{self.client_id} {self.day}: {self.accepted} accepted"


@dataclass(frozen=True)
class DayUsage:
    """One day's counts, zero when nothing was recorded."""

    day: date
    accepted: int = 0
    refused: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(REFUSALS, 0))
    by_permission: Mapping[str, int] = field(
        default_factory=lambda: dict.fromkeys(permissions.NAMES, 0)
    )

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    @property
    def total(self) -> int:
        return self.accepted + self.refused_total

    def as_json(self) -> dict[str, object]:
        """The shape of docs/management-api.md#token-usage."""
        return {
            "date": self.day.isoformat(),
            "accepted": self.accepted,
            "refused": {str(reason): count for reason, count in self.refused.items()},
        }

    @classmethod
    def of(cls, row: TokenUsage) -> DayUsage:
        return cls(
            row.day,
            row.accepted,
            {reason: getattr(row, f"refused_{reason}") for reason in REFUSALS},
            {name: getattr(row, f"{name}_calls") for name in permissions.NAMES},
        )


def today(now: datetime | None = None) -> date:
    """The UTC day ``now`` (default: the present) falls on."""
    return (now or timezone.now()).astimezone(UTC).date()


def days_of(
    client: Client, integration_id: int | None, days: int, now: datetime | None = None
) -> list[DayUsage]:
    """The last ``days`` UTC days of a token's usage (``integration_id``'s, or the client's
    own token's when ``None``), oldest first, today included."""
    calendar = _calendar(days, now)
    rows = _rows(client, calendar).filter(
        **(
            {"integration__isnull": True}
            if integration_id is None
            else {"integration_id": integration_id}
        )
    )
    return _series(rows, calendar)[integration_id]


def by_token(
    client: Client, days: int, now: datetime | None = None
) -> defaultdict[int | None, list[DayUsage]]:
    """:func:`days_of` for each of the client's tokens at once, in one query, by integration
    id (``None``: the client's own token); a token without counts has zeros."""
    calendar = _calendar(days, now)
    return _series(_rows(client, calendar), calendar)


def _calendar(days: int, now: datetime | None) -> list[date]:
    last = today(now)
    return [last - timedelta(days=n) for n in range(days - 1, -1, -1)]


def _rows(client: Client, calendar: list[date]) -> QuerySet[TokenUsage]:
    return TokenUsage.objects.filter(client=client, day__gte=calendar[0], day__lte=calendar[-1])


def _series(
    rows: Iterable[TokenUsage], calendar: list[date]
) -> defaultdict[int | None, list[DayUsage]]:
    found: dict[int | None, dict[date, DayUsage]] = defaultdict(dict)
    for row in rows:
        found[row.integration_id][row.day] = DayUsage.of(row)
    series: defaultdict[int | None, list[DayUsage]] = defaultdict(
        lambda: [DayUsage(day) for day in calendar]
    )
    for token, counted in found.items():
        series[token] = [counted.get(day) or DayUsage(day) for day in calendar]
    return series


def prune(now: datetime | None = None) -> int:
    """Delete the counts older than :data:`KEPT_DAYS`; returns how many day rows went."""
    oldest_kept = today(now) - timedelta(days=KEPT_DAYS - 1)
    deleted, _ = TokenUsage.objects.filter(day__lt=oldest_kept).delete()
    return deleted


def total(days: Iterable[DayUsage]) -> DayUsage:
    """The sum of ``days``, dated by the last of them."""
    listed = list(days)
    return DayUsage(
        listed[-1].day,
        sum(day.accepted for day in listed),
        {reason: sum(day.refused[reason] for day in listed) for reason in REFUSALS},
        {name: sum(day.by_permission[name] for day in listed) for name in permissions.NAMES},
    )
