"""The warnings on the Profile API Settings card, in a real browser (docs/screen.md#warnings)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from profiles.models import Client
from tests.browser.conftest import Screenshot, sign_in
from tests.profile_api import issue_token, require_authentication

pytestmark = pytest.mark.browser

NO_VALID_TOKEN = "Authentication is required but there is no valid token"


def test_it_warns_that_every_call_fails_while_authentication_has_no_token(
    page: Page, live_server: LiveServer, demo: Client, alice: User, screenshot: Screenshot
) -> None:
    sign_in(page, live_server, "alice")
    card = page.get_by_role("region", name="Profile API Settings")
    expect(card.get_by_role("alert")).to_have_count(0)

    card.get_by_label("Require Authentication").select_option("Enabled")
    card.get_by_role("button", name="Save").click()

    expect(card.get_by_role("alert")).to_have_text(
        f"{NO_VALID_TOKEN}: every profile API call will fail until you generate one."
    )
    expect(card.get_by_role("button", name="Generate Profile Authentication Token")).to_be_visible()
    screenshot(page, "warning-no-token")

    card.get_by_role("button", name="Generate Profile Authentication Token").click()
    expect(card.get_by_role("alert")).to_have_count(0)


def test_it_warns_when_the_token_expires_within_seven_days(
    page: Page, live_server: LiveServer, demo: Client, alice: User, screenshot: Screenshot
) -> None:
    require_authentication(demo)
    token = issue_token(demo, days_ago=85)
    sign_in(page, live_server, "alice")
    card = page.get_by_role("region", name="Profile API Settings")

    expect(card.get_by_role("alert")).to_have_text(
        "The token expires in 4 days, 23 hours, 59 minutes. Re-generate it and update your "
        "scripts before then."
    )
    expect(card.get_by_role("definition").filter(has_text="tpa_…")).to_have_text(
        f"tpa_…{token[-4:]}"
    )
    screenshot(page, "warning-expiring-soon")


def test_it_warns_that_an_expired_token_fails_and_offers_a_new_one(
    page: Page, live_server: LiveServer, demo: Client, alice: User, screenshot: Screenshot
) -> None:
    require_authentication(demo)
    token = issue_token(demo, days_ago=31, expires_in_days=30)
    sign_in(page, live_server, "alice")
    card = page.get_by_role("region", name="Profile API Settings")

    alerts = card.get_by_role("alert")
    expect(alerts).to_have_count(2)
    expect(alerts.first).to_contain_text(NO_VALID_TOKEN)
    expect(alerts.last).to_contain_text(f"The token tpa_…{token[-4:]} expired on")
    expect(card.get_by_role("definition").filter(has_text="Expired")).to_contain_text("Expired (20")
    expect(card.get_by_role("button", name="Generate Profile Authentication Token")).to_be_visible()
    screenshot(page, "warning-expired")
