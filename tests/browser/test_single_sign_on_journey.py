"""Signing in through the identity provider in a real browser (docs/operations.md#single-sign-on):
dana is in the provider's group for Approvers of demo."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from profiles.models import Client
from tests.browser.conftest import Screenshot
from tests.provider import APPROVERS, IdentityProvider
from tests.support import PASSWORD, settings_path

pytestmark = pytest.mark.browser


def sign_in_at_the_provider(page: Page, username: str) -> None:
    expect(page.get_by_role("heading", name="Test provider")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()


def test_an_approver_signs_in_through_the_provider_and_out_of_both(
    page: Page,
    live_server: LiveServer,
    demo: Client,
    single_sign_on: IdentityProvider,
    screenshot: Screenshot,
) -> None:
    single_sign_on.person("dana", APPROVERS)
    page.goto(live_server.url + settings_path(demo))
    expect(page.get_by_role("heading", name="Sign in to targetadmin")).to_be_visible()
    screenshot(page, "sign-in-with-provider")

    page.get_by_role("link", name="Sign in with Test provider").click()
    sign_in_at_the_provider(page, "dana")
    expect(page.get_by_text("Signed in as dana")).to_be_visible()
    expect(page.get_by_role("heading", name="Profile API Settings")).to_be_visible()
    expect(page.get_by_label("Require Authentication")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to targetadmin")).to_be_visible()
    # The provider's session ended too: it asks for the password again.
    page.get_by_role("link", name="Sign in with Test provider").click()
    expect(page.get_by_role("heading", name="Test provider")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_visible()


def test_with_passwords_off_the_sign_in_page_offers_only_the_provider(
    page: Page,
    live_server: LiveServer,
    single_sign_on: IdentityProvider,
    settings: Any,
    screenshot: Screenshot,
    db: None,
) -> None:
    settings.PASSWORD_SIGN_IN = False
    page.goto(live_server.url + "/")
    expect(page.get_by_role("link", name="Sign in with Test provider")).to_be_visible()
    expect(page.get_by_label("Password")).to_have_count(0)
    screenshot(page, "sign-in-provider-only")
