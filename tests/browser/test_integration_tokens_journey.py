"""Integration tokens in a real browser: an Approver adds a fetch-only and a batch-only
token, scripts call with them, each token's chart shows its calls, and revoking one leaves
the other and the client's own token working (docs/screen.md#usage-chart)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import APIRequestContext, Page, expect
from pytest_django.live_server_helper import LiveServer

from profiles.models import Client, Integration, TokenUsage
from profiles.tokens import tally, usage
from tests.browser.conftest import Screenshot, sign_in
from tests.profile_api import PC_ID, THIRD_PARTY_ID, a_profile, issue, require_authentication

pytestmark = pytest.mark.browser

FETCH = f"/rest/v1/profiles/{PC_ID}?client=demo"
UPDATE = f"/m2/demo/profile/update?mbox3rdPartyId={THIRD_PARTY_ID}&profile.tier=platinum"
BULK = "/api/v1/clients/demo/profiles/bulk"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def add_token(page: Page, name: str, permission: str) -> str:
    """Add an integration token on the page; its plaintext, shown once."""
    adding = page.locator("#add-integration-form")
    adding.get_by_label("Name").fill(name)
    adding.get_by_label(permission).check()
    adding.get_by_role("button", name="Add token").click()
    shown = page.get_by_label(f"New token for {name}")
    expect(shown).to_be_visible()
    return shown.input_value()


def seed_past_days(integration: Integration, pattern: list[tuple[int, int]]) -> None:
    """Counts of earlier days, as the writers would have left them: (accepted, refused), the
    refused calls being updates outside the token's permissions."""
    for days_ago, (accepted, refused) in enumerate(pattern, start=1):
        TokenUsage.objects.create(
            client=integration.client,
            integration=integration,
            day=usage.today() - timedelta(days=days_ago),
            accepted=accepted,
            refused_scope=refused,
            fetch_calls=accepted,
            update_calls=refused,
        )


def test_integration_tokens_call_within_their_permissions_and_chart_their_calls(
    page: Page,
    live_server: LiveServer,
    demo: Client,
    alice: User,
    api: APIRequestContext,
    counts: tally.Tally,
    screenshot: Screenshot,
) -> None:
    a_profile(demo, tier="gold")
    require_authentication(demo)
    _, own_token = issue(demo)
    sign_in(page, live_server, "alice")
    page.get_by_role("navigation", name="Client pages").get_by_role(
        "link", name="Integration tokens"
    ).click()
    expect(page.get_by_role("heading", name="Integration tokens", level=1)).to_be_visible()

    web = add_token(page, "web tier", "fetch: read profiles")
    nightly = add_token(page, "nightly import", "batch: batch files, JSON bulk and batch status")

    assert api.get(FETCH, headers=bearer(web)).status == 200
    refused = api.get(UPDATE, headers=bearer(web))
    assert refused.status == 403
    assert "update" in refused.text()
    assert "permission, which the profile authentication token does not have" in refused.text()
    bulk_refused = api.post(BULK, headers=bearer(web), data={"profiles": []})
    assert bulk_refused.status == 403
    assert bulk_refused.json()["error"]["code"] == "token_scope"
    submitted = api.post(
        BULK,
        headers=bearer(nightly),
        data={"profiles": [{"thirdPartyId": THIRD_PARTY_ID, "attributes": {"tier": "silver"}}]},
    )
    assert submitted.status == 200
    batch = api.get(
        f"/api/v1/clients/demo/batches/{submitted.json()['batchId']}", headers=bearer(nightly)
    )
    assert batch.status == 200
    assert batch.json()["status"] == "complete"

    # The live server's counts are written as a stopping worker writes them; a week of
    # earlier days is seeded, as the writers would have left it.
    counts.write_all()
    by_name = {i.name: i for i in Integration.objects.filter(client=demo)}
    seed_past_days(by_name["web tier"], [(40, 2), (55, 0), (30, 5), (62, 1), (48, 0), (20, 3)])
    seed_past_days(by_name["nightly import"], [(1, 0), (0, 0), (1, 0), (0, 0), (1, 1), (1, 0)])
    page.reload()

    web_chart = page.get_by_role("img", name="Calls per day with web tier")
    expect(web_chart).to_be_visible()
    expect(web_chart.locator("rect.usage-accepted")).to_have_count(7)
    expect(web_chart.locator("rect.usage-refused")).to_have_count(5)
    nightly_chart = page.get_by_role("img", name="Calls per day with nightly import")
    expect(nightly_chart.locator("rect.usage-accepted")).to_have_count(5)
    expect(page.get_by_text("Total: 269 calls, 13 refused")).to_be_visible()
    screenshot(page, "integration-tokens-usage")

    numbers = page.locator("details").filter(has=page.get_by_text("Calls per day with web tier"))
    numbers.get_by_text("Show numbers").click()
    today = numbers.get_by_role("row", name=usage.today().isoformat())
    expect(today.get_by_role("cell")).to_have_text(["1", "0", "0", "2", "0", "1", "1", "1"])
    screenshot(page, "integration-tokens-usage-numbers")

    row = page.get_by_role("row").filter(has_text="web tier")
    row.get_by_role("button", name="Revoke…").click()
    expect(
        page.get_by_role("heading", name="Revoke the integration token “web tier”?")
    ).to_be_visible()
    page.get_by_role("button", name="Revoke token").click()
    expect(page.get_by_role("row").filter(has_text="web tier")).to_have_count(0)

    assert api.get(FETCH, headers=bearer(web)).status == 401
    assert api.get(FETCH, headers=bearer(own_token)).status == 200
    status = api.get(
        f"/api/v1/clients/demo/batches/{submitted.json()['batchId']}", headers=bearer(nightly)
    )
    assert status.status == 200
