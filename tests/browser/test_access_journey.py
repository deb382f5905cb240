"""Who reaches the Profile API Settings screen, in a real browser (docs/screen.md#who-may-use-it)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from profiles.models import Client
from tests.browser.conftest import Screenshot, sign_in
from tests.support import settings_path

pytestmark = pytest.mark.browser


def test_it_shows_an_editor_the_403_page_saying_only_approvers_manage_it(
    page: Page, live_server: LiveServer, demo: Client, bob: User, screenshot: Screenshot
) -> None:
    sign_in(page, live_server, "bob", path=settings_path(demo))

    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text(
        "Only Approvers can manage Profile API Settings."
    )
    expect(page.get_by_label("Require Authentication")).to_have_count(0)
    response = page.goto(live_server.url + settings_path(demo))
    assert response is not None
    assert response.status == 403
    screenshot(page, "forbidden-editor")


def test_it_shows_a_member_of_another_client_the_404_page(
    page: Page,
    live_server: LiveServer,
    demo: Client,
    charlie: User,
    screenshot: Screenshot,
) -> None:
    sign_in(page, live_server, "charlie", path=settings_path(demo))

    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.get_by_role("main")).not_to_contain_text("Demo")
    expect(page.get_by_label("Require Authentication")).to_have_count(0)
    response = page.goto(live_server.url + settings_path(demo))
    assert response is not None
    assert response.status == 404
    screenshot(page, "not-found-other-client")

    page.get_by_role("link", name="Go to your clients").click()
    expect(page.get_by_role("heading", name="Implementation")).to_be_visible()
    expect(page.get_by_role("banner")).to_contain_text("Acme")
