"""The client's other pages, lightly, in a real browser: what a script sent through the
profile APIs is what an Approver finds on the Profiles and Batches pages."""

from __future__ import annotations

import re
from pathlib import Path

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


def test_it_shows_a_scripts_batch_and_its_failed_row_on_the_batches_page(
    page: Page,
    live_server: LiveServer,
    demo: Client,
    alice: User,
    api: APIRequestContext,
    screenshot: Screenshot,
) -> None:
    submitted = api.post(
        "/api/v1/clients/demo/profiles/bulk",
        data={
            "createMissing": True,
            "profiles": [
                {"thirdPartyId": "u-1", "attributes": {"tier": "gold"}},
                {"thirdPartyId": "u/2", "attributes": {"tier": "silver"}},
            ],
        },
    )
    assert submitted.status == 200
    batch_id = submitted.json()["batchId"]
    sign_in(page, live_server, "alice")

    page.get_by_role("navigation", name="Client pages").get_by_role("link", name="Batches").click()
    expect(page.get_by_role("heading", name="Batches", exact=True)).to_be_visible()
    row = page.get_by_role("row").filter(has_text=batch_id)
    expect(row).to_contain_text("complete")
    expect(row.get_by_role("cell")).to_have_text(
        [
            batch_id,
            "json",
            re.compile(r"\d{4}-\d\d-\d\d"),
            "complete",
            re.compile("2 of 2"),
            "1",
            "0",
            "1",
        ]
    )
    expect(row.get_by_role("progressbar", name="2 of 2 rows consumed")).to_be_visible()
    screenshot(page, "batches")

    row.get_by_role("link", name=batch_id).click()
    expect(page.get_by_role("heading", name=f"Batch {batch_id}")).to_be_visible()
    failed = page.get_by_role("row").filter(has_text="u/2")
    expect(failed.get_by_role("cell").first).to_have_text("1")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download all failed rows (CSV)").click()
    csv_text = Path(download.value.path()).read_text()
    assert csv_text.splitlines()[0] == "index,id,code,message"
    assert csv_text.splitlines()[1].startswith("1,u/2,")
    screenshot(page, "batch-failed-rows")
