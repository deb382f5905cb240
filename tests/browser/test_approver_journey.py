"""The Approver's journey through Profile API Settings, in a real browser (docs/screen.md, docs/api.md#authentication)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import APIRequestContext, BrowserContext, Page, expect
from pytest_django.live_server_helper import LiveServer

from profiles.models import AuditEvent, Client, ProfileToken
from tests.browser.conftest import NARROW, Screenshot, sign_in
from tests.profile_api import PC_ID, a_profile, issue_token, require_authentication
from tests.support import basic_authorization, settings_path

pytestmark = pytest.mark.browser

TOKEN = re.compile(r"tpa_[0-9A-Za-z]{49}")
CARD_SENTENCE = (
    "Enable or disable authentication for batch updates via API and generate a profile "
    "authentication token."
)


def generate_token(page: Page, expires_in: str = "90 days") -> str:
    """Enable Require Authentication, generate a token, and read it off the card."""
    page.get_by_label("Require Authentication").select_option("Enabled")
    page.get_by_role("button", name="Save").click()
    expect(
        page.get_by_role("status").filter(has_text="Require Authentication enabled.")
    ).to_be_visible()
    page.get_by_label("Expires In").select_option(expires_in)
    page.get_by_role("button", name="Generate Profile Authentication Token").click()
    token = page.get_by_label("New profile authentication token").input_value()
    assert TOKEN.fullmatch(token)
    return token


def fetch_profile(api: APIRequestContext, token: str) -> int:
    response = api.get(
        f"/rest/v1/profiles/{PC_ID}?client=demo",
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.status


def kept_token(api: APIRequestContext) -> dict[str, Any]:
    """What a script's GET …/authentication/token answers alice for the demo client."""
    answer = api.get(
        "/demo/target/authentication/token", headers={"Authorization": basic_authorization("alice")}
    )
    body: dict[str, Any] = answer.json()
    return body


def test_it_enables_authentication_generates_copies_and_then_only_masks_the_token(
    context: BrowserContext,
    page: Page,
    live_server: LiveServer,
    demo: Client,
    alice: User,
    screenshot: Screenshot,
) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    sign_in(page, live_server, "alice")

    page.get_by_role("navigation", name="Client pages").get_by_role(
        "link", name="Implementation"
    ).click()
    expect(page).to_have_url(live_server.url + settings_path(demo))
    card = page.get_by_role("region", name="Profile API Settings")
    expect(card).to_contain_text(CARD_SENTENCE)
    expect(card).to_match_aria_snapshot(
        """
        - heading "Profile API Settings" [level=2]
        - combobox "Require Authentication"
        - button "Save"
        """
    )
    expect(card.get_by_label("Require Authentication")).to_have_value("disabled")
    screenshot(page, "settings-authentication-off")

    page.get_by_label("Require Authentication").select_option("Enabled")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Require Authentication enabled.")
    expect(card.get_by_label("Require Authentication")).to_have_value("enabled")
    expect(card.get_by_label("Expires In")).to_have_value("90")

    card.get_by_label("Expires In").select_option("30 days")
    card.get_by_role("button", name="Generate Profile Authentication Token").click()
    field = card.get_by_label("New profile authentication token")
    token = field.input_value()
    assert TOKEN.fullmatch(token)
    expect(card).to_contain_text("it will not be shown again")
    card.get_by_role("button", name="Copy").click()
    expect(card.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == token
    screenshot(page, "settings-new-token")

    page.reload()
    expect(card.get_by_label("New profile authentication token")).to_have_count(0)
    assert token not in page.content()
    masked = card.get_by_role("definition").filter(has_text="tpa_…")
    expect(masked).to_have_text(f"tpa_…{token[-4:]}")
    expect(card).to_contain_text(re.compile(r"Expires In\s*29 days, 23 hours, \d+ minutes"))
    expect(card).to_contain_text("by alice on")
    expect(card).to_contain_text(re.compile(r"Last Used\s*Never used"))
    expect(
        card.get_by_role("button", name="Re-generate Profile Authentication Token")
    ).to_be_visible()
    expect(card.get_by_role("alert")).to_have_count(0)
    screenshot(page, "settings-token")

    page.set_viewport_size(NARROW)
    assert page.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]
    for control in (
        card.get_by_label("Require Authentication"),
        card.get_by_label("Expires In"),
        card.get_by_role("button", name="Re-generate Profile Authentication Token"),
    ):
        box = control.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= NARROW["width"]
    screenshot(page, "settings-token-narrow")


def test_it_regenerates_after_confirmation_and_the_old_token_stops_working(
    page: Page,
    live_server: LiveServer,
    demo: Client,
    alice: User,
    api: APIRequestContext,
    screenshot: Screenshot,
) -> None:
    a_profile(demo, tier="gold")
    sign_in(page, live_server, "alice")
    old_token = generate_token(page)
    assert fetch_profile(api, old_token) == 200
    assert fetch_profile(api, "") == 401

    page.goto(live_server.url + settings_path(demo))
    page.get_by_label("Expires In").select_option("7 days")
    page.get_by_role("button", name="Re-generate Profile Authentication Token").click()
    dialog = page.get_by_role("dialog", name="Re-generate the profile authentication token?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(
        "Resetting the token makes API calls that use the current token fail."
    )
    screenshot(page, "settings-regenerate-confirmation")
    dialog.get_by_role("button", name="Re-generate token").click()

    new_token = page.get_by_label("New profile authentication token").input_value()
    assert TOKEN.fullmatch(new_token)
    assert new_token != old_token
    refused = api.get(
        f"/rest/v1/profiles/{PC_ID}?client=demo",
        headers={"Authorization": f"Bearer {old_token}"},
    )
    assert refused.status == 401
    assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    fetched = api.get(
        f"/rest/v1/profiles/{PC_ID}?client=demo",
        headers={"Authorization": f"Bearer {new_token}"},
    )
    assert fetched.status == 200
    assert fetched.json()["profileAttributes"]["tier"]["value"] == "gold"
    # The new token lives the 7 days chosen, so the card warns at once.
    expect(page.get_by_role("alert")).to_contain_text("The token expires in 6 days, 23 hours")


def test_it_changes_nothing_when_the_confirmation_is_dismissed(
    page: Page, live_server: LiveServer, demo: Client, alice: User, api: APIRequestContext
) -> None:
    require_authentication(demo)
    token = issue_token(demo)
    a_profile(demo)
    active = ProfileToken.objects.get(client=demo)
    events = AuditEvent.objects.count()
    sign_in(page, live_server, "alice")

    regenerate = page.get_by_role("button", name="Re-generate Profile Authentication Token")
    dialog = page.get_by_role("dialog", name="Re-generate the profile authentication token?")
    for dismiss in ("Cancel", "Close", "Escape"):
        regenerate.click()
        expect(dialog).to_be_visible()
        if dismiss == "Escape":
            page.keyboard.press("Escape")
        else:
            dialog.get_by_role("button", name=dismiss, exact=True).click()
        expect(dialog).to_be_hidden()

    page.reload()
    card = page.get_by_role("region", name="Profile API Settings")
    expect(card.get_by_role("definition").filter(has_text="tpa_…")).to_have_text(
        f"tpa_…{token[-4:]}"
    )
    assert list(ProfileToken.objects.filter(client=demo)) == [active]
    assert ProfileToken.objects.get(client=demo).revoked_at is None
    assert AuditEvent.objects.count() == events
    assert fetch_profile(api, token) == 200


def test_it_rotates_with_a_grace_period_and_revokes_the_previous_token_now(
    page: Page,
    live_server: LiveServer,
    demo: Client,
    alice: User,
    api: APIRequestContext,
    screenshot: Screenshot,
) -> None:
    a_profile(demo, tier="gold")
    sign_in(page, live_server, "alice")
    old_token = generate_token(page)
    assert fetch_profile(api, old_token) == 200

    page.goto(live_server.url + settings_path(demo))
    card = page.get_by_role("region", name="Profile API Settings")
    expect(card).to_contain_text(re.compile(r"Last Used\s*Last used within the last minute from"))
    card.get_by_role("button", name="Re-generate Profile Authentication Token").click()
    dialog = page.get_by_role("dialog", name="Re-generate the profile authentication token?")
    grace = dialog.get_by_label("Current token stops working")
    expect(grace).to_have_value("0")  # Immediately, as Adobe
    grace.select_option("In 1 hour")
    screenshot(page, "settings-regenerate-grace")
    dialog.get_by_role("button", name="Re-generate token").click()

    new_token = page.get_by_label("New profile authentication token").input_value()
    assert TOKEN.fullmatch(new_token)
    # Both work during the grace period.
    assert fetch_profile(api, old_token) == 200
    assert fetch_profile(api, new_token) == 200

    page.reload()
    previous = card.get_by_role("region", name="Previous token, in its grace period")
    expect(previous).to_contain_text(f"tpa_…{old_token[-4:]}")
    expect(previous).to_contain_text(re.compile(r"Stops Working In\s*0 days, 0 hours, 5\d minutes"))
    expect(previous).to_contain_text("Still in use: last used within the last minute from")
    screenshot(page, "settings-token-in-grace")

    previous.get_by_role("button", name="Revoke now").click()
    confirm = page.get_by_role("dialog", name="Revoke the previous token now?")
    expect(confirm).to_contain_text(f"API calls that use the previous token tpa_…{old_token[-4:]}")
    confirm.get_by_role("button", name="Revoke token").click()

    expect(page.get_by_role("status")).to_have_text(
        f"Revoked the previous token tpa_…{old_token[-4:]}: calls that use it now fail."
    )
    expect(card.get_by_role("region", name="Previous token, in its grace period")).to_have_count(0)
    assert fetch_profile(api, old_token) == 401
    assert fetch_profile(api, new_token) == 200
    revoked = AuditEvent.objects.filter(client=demo).first()
    assert revoked is not None
    assert (revoked.action, revoked.actor, revoked.token_last_four) == (
        AuditEvent.Action.PREVIOUS_TOKEN_REVOKED,
        alice,
        old_token[-4:],
    )


def test_it_limits_the_profile_apis_to_allowed_networks_and_clears_the_list(
    page: Page,
    live_server: LiveServer,
    demo: Client,
    alice: User,
    api: APIRequestContext,
) -> None:
    """The live server sees the script at 127.0.0.1: a list without it refuses the script."""
    a_profile(demo, tier="gold")
    sign_in(page, live_server, "alice", settings_path(demo))
    assert fetch_profile(api, "") == 200

    networks = page.get_by_label("Allowed networks")
    networks.fill("not a network")
    page.get_by_role("button", name="Set allowed networks").click()
    expect(page.get_by_text("'not a network' is not a network in CIDR notation")).to_be_visible()

    page.get_by_label("Allowed networks").fill("192.0.2.0/24\n2001:db8::/32")
    page.get_by_role("button", name="Set allowed networks").click()
    expect(page.get_by_role("status")).to_have_text("Allowed networks saved.")
    expect(page.get_by_label("Allowed networks")).to_have_value("192.0.2.0/24\n2001:db8::/32")
    refused = api.get(f"/rest/v1/profiles/{PC_ID}?client=demo")
    assert refused.status == 403
    assert refused.json()["message"] == (
        "This client accepts profile API calls only from its allowed networks."
    )

    page.get_by_label("Allowed networks").fill("")
    page.get_by_role("button", name="Set allowed networks").click()
    expect(page.get_by_role("status")).to_have_text("Profile API calls accepted from any address.")
    assert fetch_profile(api, "") == 200
    actions = AuditEvent.objects.filter(action=AuditEvent.Action.ALLOWED_NETWORKS_CHANGED)
    assert actions.count() == 2


def test_it_allows_retrieval_reveals_the_token_and_erases_the_copy_when_turned_off(
    page: Page,
    live_server: LiveServer,
    demo: Client,
    alice: User,
    api: APIRequestContext,
    screenshot: Screenshot,
) -> None:
    """docs/tokens.md#retrievable-tokens, on the card and through a script's GET."""
    sign_in(page, live_server, "alice", settings_path(demo))
    card = page.get_by_role("region", name="Profile API Settings")
    option = card.get_by_label("Allow the token to be retrieved again")
    expect(card).to_contain_text("Trades safety for compatibility")
    expect(option).not_to_be_checked()

    option.check()
    card.get_by_role("button", name="Set token retrieval").click()
    expect(page.get_by_role("status").filter(has_text="Token retrieval allowed")).to_be_visible()
    expect(option).to_be_checked()
    token = generate_token(page)
    page.reload()
    expect(card.get_by_label("New profile authentication token")).to_have_count(0)

    card.get_by_role("button", name="Reveal token").click()
    assert card.get_by_label("Revealed profile authentication token").input_value() == token
    screenshot(page, "settings-token-revealed")
    assert kept_token(api)["accessToken"] == token
    page.reload()
    expect(card.get_by_label("Revealed profile authentication token")).to_have_count(0)
    assert token not in page.content()

    option.uncheck()
    card.get_by_role("button", name="Set token retrieval").click()
    expect(
        page.get_by_role("status").filter(has_text="every kept copy of the token was erased")
    ).to_be_visible()
    expect(card.get_by_role("button", name="Reveal token")).to_have_count(0)
    expect(card).to_contain_text("Not retrievable: only its digest is kept.")
    assert "accessToken" not in kept_token(api)
    assert ProfileToken.objects.get(client=demo).ciphertext is None
    retrieved = AuditEvent.objects.filter(action=AuditEvent.Action.TOKEN_RETRIEVED)
    assert sorted(retrieved.values_list("detail", flat=True)) == [
        "management API",
        "revealed on the screen",
    ]
