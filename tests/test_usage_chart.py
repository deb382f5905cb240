"""A token's 30-day usage chart: SVG drawn on the server, refusals stacked in another colour,
the total, a text alternative and a "Show numbers" table (docs/screen.md#usage-chart)."""

from __future__ import annotations

from datetime import date, timedelta
from xml.etree import ElementTree

import pytest
from django.contrib.auth.models import User
from django.template.loader import render_to_string

from profiles.access.actors import SYSTEM
from profiles.models import Client, ProfileToken, TokenUsage
from profiles.pages.usage_chart import ACCEPTED_COLOUR, PLOT_HEIGHT, REFUSED_COLOUR, UsageChart
from profiles.tokens import usage
from profiles.tokens.permissions import Permission
from profiles.tokens.usage import DayUsage
from tests.profile_api import issue
from tests.support import settings_path, signed_in

SVG = "{http://www.w3.org/2000/svg}"
LAST = date(2026, 12, 6)


def a_day(days_ago: int, accepted: int = 0, **refused: int) -> DayUsage:
    return DayUsage(
        LAST - timedelta(days=days_ago),
        accepted,
        {"expired": 0, "revoked": 0, "scope": 0, "network": 0} | refused,
        {"fetch": accepted, "update": 0, "batch": sum(refused.values())},
    )


def month(*busy: DayUsage) -> list[DayUsage]:
    """30 days ending on LAST, quiet but for ``busy``."""
    given = {day.day: day for day in busy}
    days = [LAST - timedelta(days=n) for n in range(29, -1, -1)]
    return [given.get(day) or DayUsage(day) for day in days]


def rendered(chart: UsageChart) -> str:
    return render_to_string("profiles/_usage_chart.html", {"chart": chart})


def svg_of(html: str) -> ElementTree.Element:
    start = html.index("<svg xmlns")
    svg = html[start : html.index("</svg>", start) + len("</svg>")]
    return ElementTree.fromstring(svg)  # noqa: S314 (our own page)


def rects(svg: ElementTree.Element, kind: str) -> list[ElementTree.Element]:
    return [rect for rect in svg.iter(f"{SVG}rect") if rect.get("class") == kind]


def test_it_draws_a_bar_per_day_with_calls_with_refusals_stacked_above_in_another_colour() -> None:
    chart = UsageChart("CRM sync", month(a_day(3, 12, scope=3), a_day(0, 30)), "crm")

    svg = svg_of(rendered(chart))

    accepted, refused = rects(svg, "usage-accepted"), rects(svg, "usage-refused")
    assert len(accepted) == 2
    assert len(refused) == 1
    assert {rect.get("fill") for rect in accepted} == {ACCEPTED_COLOUR}
    assert refused[0].get("fill") == REFUSED_COLOUR != ACCEPTED_COLOUR
    day_3 = accepted[0]
    assert refused[0].get("x") == day_3.get("x")
    top_of_accepted = float(day_3.get("y", ""))
    assert float(refused[0].get("y", "")) + float(refused[0].get("height", "")) == pytest.approx(
        top_of_accepted
    )
    # The busiest day (30 calls) is the full height; 12 + 3 calls are half of it.
    assert float(accepted[1].get("height", "")) == pytest.approx(PLOT_HEIGHT)
    assert float(day_3.get("height", "")) + float(refused[0].get("height", "")) == pytest.approx(
        PLOT_HEIGHT / 2
    )
    assert float(day_3.get("x", "")) < float(accepted[1].get("x", ""))  # oldest on the left


def test_it_shows_the_total_and_a_text_alternative_saying_when_it_was_last_called() -> None:
    chart = UsageChart("CRM sync", month(a_day(3, 1200, scope=3), a_day(1, 34)), "crm")

    html = rendered(chart)
    svg = svg_of(html)

    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "crm-title crm-desc"
    description = svg.find(f"{SVG}desc")
    assert description is not None
    assert description.text == (
        "CRM sync: 1,237 calls in the last 30 days, 1,234 accepted and 3 refused; "
        "last called on 2026-12-05."
    )
    assert "Total: 1,237 calls, 3 refused" in html


def test_a_token_nothing_calls_says_so() -> None:
    chart = UsageChart("web tier", month(), "web")

    svg = svg_of(rendered(chart))

    description = svg.find(f"{SVG}desc")
    assert description is not None
    assert description.text == "web tier: no calls in the last 30 days."
    assert rects(svg, "usage-accepted") == rects(svg, "usage-refused") == []


def test_show_numbers_holds_every_days_counts_in_a_plain_table() -> None:
    chart = UsageChart("CRM sync", month(a_day(3, 12, scope=3, expired=1)), "crm")

    html = rendered(chart)

    details = html[html.index("<details") : html.index("</details>")]
    assert "<summary>Show numbers</summary>" in details
    assert details.count("<tr>") == 1 + 30 + 1  # headings, the days, the totals
    assert (
        '<tr><th scope="row" class="text-nowrap">2026-12-03</th><td>12</td><td>1</td><td>0</td><td>3</td><td>0</td>'
        "<td>12</td><td>0</td><td>4</td></tr>"
    ) in details
    assert "Refused: outside permissions" in details


def test_it_needs_no_script_and_escapes_the_tokens_name() -> None:
    chart = UsageChart('<script>alert("x")</script>', month(a_day(0, 1)), "evil")

    html = rendered(chart)

    assert "<script" not in html
    assert "&lt;script&gt;" in html


def test_the_card_charts_the_clients_token_over_the_last_30_days(alice: User) -> None:
    demo = Client.objects.get(code="demo")
    issue(demo)
    TokenUsage.objects.create(
        client=demo, day=usage.today() - timedelta(days=2), accepted=12, refused_revoked=3
    )

    page = signed_in(alice).get(settings_path(demo))

    assert page.status_code == 200
    html = page.content.decode()
    svg = svg_of(html)
    description = svg.find(f"{SVG}desc")
    assert description is not None
    assert description.text == (
        "The client's token: 15 calls in the last 30 days, 12 accepted and 3 refused; "
        f"last called on {usage.today() - timedelta(days=2)}."
    )
    assert len(rects(svg, "usage-accepted")) == len(rects(svg, "usage-refused")) == 1


def test_the_integration_tokens_page_charts_each_token_for_an_editor_too(bob: User) -> None:
    demo = Client.objects.get(code="demo")
    crm, _, _ = ProfileToken.objects.add_integration(
        demo, name="CRM sync", granted=Permission.FETCH, expires_in_days=30, actor=SYSTEM
    )
    ProfileToken.objects.add_integration(
        demo, name="web tier", granted=Permission.UPDATE, expires_in_days=30, actor=SYSTEM
    )
    TokenUsage.objects.create(client=demo, integration=crm, day=usage.today(), accepted=7)
    TokenUsage.objects.create(client=demo, day=usage.today(), accepted=100)  # the client's

    page = signed_in(bob).get(f"/setup/{demo.code}/integrations/")

    assert page.status_code == 200
    html = page.content.decode()
    assert (
        f"CRM sync: 7 calls in the last 30 days, 7 accepted and 0 refused; last called on {usage.today()}."
        in html
    )
    assert "web tier: no calls in the last 30 days." in html
    assert "The client&#x27;s token" not in html


def test_no_one_sees_another_clients_charts(charlie: User, demo: Client) -> None:
    ProfileToken.objects.add_integration(
        demo, name="CRM sync", granted=Permission.FETCH, expires_in_days=30, actor=SYSTEM
    )

    page = signed_in(charlie).get(f"/setup/{demo.code}/integrations/")

    assert page.status_code == 404
    assert b"CRM sync" not in page.content
