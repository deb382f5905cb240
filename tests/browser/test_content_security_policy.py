"""The Content-Security-Policy, enforced by a real browser: every page people and operators
open runs without a single violation, and markup smuggled into a page does not run."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client as HttpClient
from playwright.sync_api import ConsoleMessage, Page, expect
from pytest_django.live_server_helper import LiveServer

from profiles.models import Client, Profile
from tests.batches import batch_id_of, submit
from tests.browser.conftest import sign_in
from tests.support import PASSWORD, settings_path

pytestmark = pytest.mark.browser


def violations_of(page: Page) -> list[str]:
    """Chromium reports every blocked script, style or frame on the console."""
    found: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            found.append(f"{page.url}: {message.text}")

    page.on("console", note)
    return found


def test_every_page_runs_without_a_policy_violation(
    page: Page, live_server: LiveServer, demo: Client
) -> None:
    User.objects.create_superuser("root", password=PASSWORD)
    Profile.objects.create(client=demo, pc_id="p1", attributes={})
    batch_id = batch_id_of(submit(HttpClient(), "batch=pcId,a\np1,x\nbad/,x,y\n"))
    violations = violations_of(page)
    sign_in(page, live_server, "root")

    for path in (
        settings_path(demo),
        "/clients/demo/profiles/?by=pcId&profile_id=p1",
        "/clients/demo/batches/",
        f"/clients/demo/batches/{batch_id}/",
        "/admin/",
        "/admin/profiles/client/",
        f"/admin/profiles/client/{demo.pk}/change/",
        "/admin/profiles/auditevent/",
        "/admin/profiles/batch/",
        "/admin/auth/user/",
        "/admin/auth/user/add/",
    ):
        response = page.goto(live_server.url + path)
        assert response is not None
        assert response.status == 200, path
        page.wait_for_load_state("load")

    # The settings screen's own script still works under the policy: it opens the dialog.
    page.goto(live_server.url + settings_path(demo))
    page.get_by_label("Require Authentication").select_option("Enabled")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("button", name="Generate Profile Authentication Token").click()
    page.get_by_role("button", name="Re-generate Profile Authentication Token").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    assert violations == []


def test_markup_smuggled_into_a_page_does_not_run(
    page: Page, live_server: LiveServer, demo: Client, alice: User
) -> None:
    violations = violations_of(page)
    sign_in(page, live_server, "alice", path=settings_path(demo))

    page.evaluate(
        """() => {
            window.ran = [];
            document.body.insertAdjacentHTML("beforeend",
                '<img src="/missing.png" onerror="window.ran.push(1)">' +
                '<div style="display: none" id="styled">x</div>');
            const script = document.createElement("script");
            script.textContent = "window.ran.push(2)";
            document.body.append(script);
        }"""
    )

    expect(page.locator("#styled")).to_be_visible()  # the inline style was not applied
    page.wait_for_timeout(300)
    assert page.evaluate("window.ran") == []
    assert len(violations) >= 3
