"""The client's other pages, lightly, in a real browser: what a script sent through the
profile APIs is what an Approver finds on the Profiles page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import APIRequestContext, Page, expect
from pytest_django.live_server_helper import LiveServer

from profiles.models import Client
from tests.browser.conftest import Screenshot, sign_in
from tests.profile_api import THIRD_PARTY_ID, a_profile

pytestmark = pytest.mark.browser


def test_it_finds_on_the_profiles_page_what_a_script_updated(
    page: Page,
    live_server: LiveServer,
    demo: Client,
    alice: User,
    api: APIRequestContext,
    screenshot: Screenshot,
) -> None:
    a_profile(demo, tier="gold", city="Basel")
    updated = api.get(
        f"/m2/demo/profile/update?mbox3rdPartyId={THIRD_PARTY_ID}&profile.tier=platinum"
    )
    assert updated.status == 200
    sign_in(page, live_server, "alice")

    page.get_by_role("navigation", name="Client pages").get_by_role("link", name="Profiles").click()
    expect(page.get_by_role("heading", name="Profiles", exact=True)).to_be_visible()
    search = page.get_by_role("search")
    search.get_by_label("Look up by").select_option("thirdPartyId")
    search.get_by_label("Id").fill(THIRD_PARTY_ID)
    search.get_by_role("button", name="Look up").click()

    attributes = page.get_by_role("table")
    expect(attributes.get_by_role("row", name="tier platinum")).to_be_visible()
    expect(attributes.get_by_role("row", name="city Basel")).to_be_visible()
    screenshot(page, "profiles-lookup")

    search.get_by_label("Id").fill("nobody")
    search.get_by_role("button", name="Look up").click()
    expect(page.get_by_role("status")).to_have_text(
        "No profile found for client demo with thirdPartyId nobody."
    )
