"""The Profile API Settings screen with JavaScript disabled: everything works but Copy."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import APIRequestContext, BrowserContext, Page, expect
from pytest_django.live_server_helper import LiveServer

from profiles.models import AuditEvent, Client, ProfileApiSettings, ProfileToken
from tests.browser.conftest import CreateContext, Screenshot, sign_in
from tests.profile_api import PC_ID, a_profile

pytestmark = pytest.mark.browser

TOKEN = re.compile(r"tpa_[0-9A-Za-z]{49}")


@pytest.fixture
def page(new_context: CreateContext) -> Page:
    context: BrowserContext = new_context(java_script_enabled=False)
    return context.new_page()


def test_it_enables_generates_and_regenerates_without_javascript(
    page: Page,
    live_server: LiveServer,
    demo: Client,
    alice: User,
    api: APIRequestContext,
    screenshot: Screenshot,
) -> None:
    a_profile(demo)
    sign_in(page, live_server, "alice")
    card = page.get_by_role("region", name="Profile API Settings")

    card.get_by_label("Require Authentication").select_option("Enabled")
    card.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Require Authentication enabled.")
    card.get_by_label("Expires In").select_option("180 days")
    card.get_by_role("button", name="Generate Profile Authentication Token").click()

    field = card.get_by_label("New profile authentication token")
    token = field.input_value()
    assert TOKEN.fullmatch(token)
    # Copy needs JavaScript, so it is not offered; the token is selectable instead.
    expect(card.get_by_role("button", name="Copy")).to_have_count(0)
    expect(field).to_be_enabled()
    expect(field).not_to_be_editable()
    field.select_text()
    assert field.evaluate("f => f.value.slice(f.selectionStart, f.selectionEnd)") == token
    screenshot(page, "no-javascript-new-token")

    card.get_by_role("button", name="Re-generate Profile Authentication Token").click()
    expect(
        page.get_by_role("heading", name="Re-generate the profile authentication token?")
    ).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text(
        "Resetting the token makes API calls that use the current token fail."
    )
    expect(page.get_by_role("main")).to_contain_text("The new token will expire in 90 days.")
    screenshot(page, "no-javascript-regenerate-confirmation")
    page.get_by_role("link", name="Cancel").click()
    expect(card.get_by_role("definition").filter(has_text="tpa_…")).to_have_text(
        f"tpa_…{token[-4:]}"
    )
    assert ProfileToken.objects.filter(client=demo).unrevoked().count() == 1

    card.get_by_role("button", name="Re-generate Profile Authentication Token").click()
    page.get_by_role("button", name="Re-generate token").click()
    new_token = card.get_by_label("New profile authentication token").input_value()
    assert TOKEN.fullmatch(new_token)
    assert new_token != token
    for sent, status in ((token, 401), (new_token, 200)):
        response = api.get(
            f"/rest/v1/profiles/{PC_ID}?client=demo",
            headers={"Authorization": f"Bearer {sent}"},
        )
        assert response.status == status

    # Again, keeping the current token a day; then Revoke now, confirmed on a page.
    card.get_by_role("button", name="Re-generate Profile Authentication Token").click()
    page.get_by_label("Current token stops working").select_option("In 24 hours")
    page.get_by_role("button", name="Re-generate token").click()
    third = card.get_by_label("New profile authentication token").input_value()
    assert fetch(api, new_token) == fetch(api, third) == 200
    page.goto(page.url)
    card.get_by_role("button", name="Revoke now").click()
    expect(page.get_by_role("heading", name="Revoke the previous token now?")).to_be_visible()
    page.get_by_role("button", name="Revoke token").click()
    expect(page.get_by_role("status")).to_contain_text("Revoked the previous token")
    assert (fetch(api, new_token), fetch(api, third)) == (401, 200)

    card.get_by_label("Require Authentication").select_option("Disabled")
    card.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Require Authentication disabled.")
    assert ProfileApiSettings.for_client(demo).require_authentication is False
    actions = AuditEvent.objects.filter(client=demo).order_by("pk").values_list("action", flat=True)
    assert list(actions) == [
        AuditEvent.Action.AUTH_ENABLED,
        AuditEvent.Action.TOKEN_GENERATED,
        AuditEvent.Action.TOKEN_REGENERATED,
        AuditEvent.Action.TOKEN_REGENERATED,
        AuditEvent.Action.GRACE_STARTED,
        AuditEvent.Action.PREVIOUS_TOKEN_REVOKED,
        AuditEvent.Action.AUTH_DISABLED,
    ]


def fetch(api: APIRequestContext, token: str) -> int:
    response = api.get(
        f"/rest/v1/profiles/{PC_ID}?client=demo", headers={"Authorization": f"Bearer {token}"}
    )
    return response.status
