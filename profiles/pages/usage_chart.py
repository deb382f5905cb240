"""A token's usage as a bar chart drawn on the server (docs/screen.md#usage-chart).

One bar per UTC day, oldest on the left: the accepted calls from the baseline, the refused
ones stacked above them in another colour. The chart is SVG in the page, with no script:
the geometry is computed here and ``profiles/_usage_chart.html`` draws it. Its text
alternative answers the question asked before revoking a token, "is anything still calling
with it?", and a "Show numbers" ``<details>`` holds the same counts as a table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from profiles.access.models import Client
from profiles.tokens import permissions, usage
from profiles.tokens.usage import REFUSALS, DayUsage, Outcome, total

ACCEPTED_COLOUR = "#0d6efd"  # Bootstrap's primary blue
REFUSED_COLOUR = "#d63384"  # Bootstrap's pink: apart from the blue for colour-blind readers too
SLOT = 18  # the width each day takes, in SVG units
BAR = 14
PLOT_HEIGHT = 100
LEFT = 36  # room for the scale's labels
TOP = 8
BOTTOM = 20  # room for the first and last dates
REFUSAL_LABELS = {
    Outcome.EXPIRED: "expired",
    Outcome.REVOKED: "revoked",
    Outcome.SCOPE: "outside permissions",
    Outcome.NETWORK: "outside allowed networks",
}


@dataclass(frozen=True)
class Bar:
    """One day's bar: where it stands and how tall each part is."""

    usage: DayUsage
    x: int
    accepted_y: float
    accepted_height: float
    refused_y: float
    refused_height: float

    @property
    def label(self) -> str:
        """What a pointer over the bar shows: "2026-12-05: 12 accepted, 3 refused"."""
        return (
            f"{self.usage.day.isoformat()}: {number(self.usage.accepted)} accepted, "
            f"{number(self.usage.refused_total)} refused"
        )


@dataclass(frozen=True)
class UsageChart:
    """The chart of ``days`` (oldest first) for the token ``name``; ``html_id`` tells its
    elements apart from another chart's on the page."""

    name: str
    days: Sequence[DayUsage]
    html_id: str

    accepted_colour = ACCEPTED_COLOUR
    refused_colour = REFUSED_COLOUR
    plot_top = TOP
    baseline = TOP + PLOT_HEIGHT
    left = LEFT
    bar_width = BAR

    @property
    def width(self) -> int:
        return LEFT + SLOT * len(self.days)

    @property
    def height(self) -> int:
        return TOP + PLOT_HEIGHT + BOTTOM

    @property
    def scale(self) -> int:
        """The calls the full height stands for: the busiest day, at least 1."""
        return max((day.total for day in self.days), default=0) or 1

    @property
    def bars(self) -> list[Bar]:
        unit = PLOT_HEIGHT / self.scale
        bars = []
        for index, day in enumerate(self.days):
            accepted = day.accepted * unit
            refused = day.refused_total * unit
            bars.append(
                Bar(
                    day,
                    LEFT + index * SLOT + (SLOT - BAR) // 2,
                    self.baseline - accepted,
                    accepted,
                    self.baseline - accepted - refused,
                    refused,
                )
            )
        return bars

    @property
    def total(self) -> DayUsage:
        return total(self.days)

    @property
    def first_day(self) -> str:
        return self.days[0].day.isoformat()

    @property
    def last_day(self) -> str:
        return self.days[-1].day.isoformat()

    @property
    def scale_label(self) -> str:
        return number(self.scale)

    @property
    def last_call(self) -> DayUsage | None:
        """The latest day with a call, accepted or refused."""
        return next((day for day in reversed(self.days) if day.total), None)

    @property
    def total_label(self) -> str:
        """ "1,234 calls, 56 refused"."""
        whole = self.total
        return f"{number(whole.total)} calls, {number(whole.refused_total)} refused"

    @property
    def columns(self) -> list[str]:
        """The table's headings after the day's."""
        refusals = [f"Refused: {REFUSAL_LABELS[reason]}" for reason in REFUSALS]
        needed = [f"Needing {name}" for name in permissions.NAMES]
        return ["Accepted", *refusals, *needed]

    @property
    def rows(self) -> list[list[str]]:
        """The table: one row per day, oldest first, then the totals."""
        return [[day.day.isoformat(), *cells(day)] for day in self.days]

    @property
    def total_row(self) -> list[str]:
        return cells(self.total)

    @property
    def summary(self) -> str:
        """The text alternative: the totals, and whether and when it was last called."""
        period = f"the last {len(self.days)} days"
        if self.last_call is None:
            return f"{self.name}: no calls in {period}."
        whole = self.total
        return (
            f"{self.name}: {number(whole.total)} calls in {period}, "
            f"{number(whole.accepted)} accepted and {number(whole.refused_total)} refused; "
            f"last called on {self.last_call.day.isoformat()}."
        )


def token_charts(
    client: Client, names: Mapping[int | None, str], now: datetime | None = None
) -> list[UsageChart]:
    """The charts of the client's tokens ``names`` holds (by integration id, ``None`` for the
    client's own token), in its order, over the last 30 days, from one query."""
    series = usage.by_token(client, usage.DEFAULT_DAYS, now)
    return [
        UsageChart(name, series[token], f"usage-{'client-token' if token is None else token}")
        for token, name in names.items()
    ]


def cells(day: DayUsage) -> list[str]:
    """A day's counts in the order of :attr:`UsageChart.columns`."""
    refused = [number(day.refused[reason]) for reason in REFUSALS]
    needed = [number(day.by_permission[name]) for name in permissions.NAMES]
    return [number(day.accepted), *refused, *needed]


def number(count: int) -> str:
    """ "1,234": a count as the page shows it."""
    return f"{count:,}"
