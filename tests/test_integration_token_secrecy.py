"""An integration token's plaintext exists once, in the answer that adds or re-generates it,
and nowhere else (docs/tokens.md#integration-tokens): not in any table, log line, session,
later page, the management API's list or the admin."""

from __future__ import annotations

import logging
import re

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.test import Client as HttpClient

from profiles.models import Client, Integration, ProfileToken
from tests.profile_api import PC_ID, a_profile, require_authentication
from tests.support import basic
from tests.test_token_secrecy import stored_values

TOKEN_PATTERN = re.compile(r"tpa_[0-9A-Za-z]{49}")
PAGE = "/setup/demo/integrations/"


@pytest.fixture
def added(alice: User, demo: Client, caplog: pytest.LogCaptureFixture) -> tuple[HttpClient, str]:
    """alice adds an integration token on the page, then re-generates it; a script calls
    with it. Returns her browser and the token now in use."""
    caplog.set_level(logging.DEBUG)
    a_profile(demo, city="Lyon")
    require_authentication(demo)
    http = HttpClient()
    http.force_login(alice)
    first = http.post(
        PAGE, {"name": "CRM sync", "expires_in_days": 90, "permissions": ["fetch"], "add": "1"}
    )
    (plaintext,) = set(TOKEN_PATTERN.findall(first.content.decode()))
    integration = Integration.objects.get()
    again = http.post(
        PAGE,
        {
            "integration": integration.pk,
            "expires_in_days": 90,
            "previous_token_grace": 3600,
            "regenerate": "confirmed",
        },
    )
    (renewed,) = set(TOKEN_PATTERN.findall(again.content.decode()))
    for used in (plaintext, renewed):
        response = HttpClient().get(
            f"/rest/v1/profiles/{PC_ID}?client=demo", HTTP_AUTHORIZATION=f"Bearer {used}"
        )
        assert response.status_code == 200
        HttpClient().get(
            f"/m2/demo/profile/update?mboxPC={PC_ID}&profile.a=1",
            HTTP_AUTHORIZATION=f"Bearer {used}",
        )  # refused: logged
    for response in (first, again):
        assert not response.has_header("Location")
        assert all(plaintext not in morsel.value for morsel in response.cookies.values())
    return http, renewed


def test_it_is_in_no_column_of_any_table(added: tuple[HttpClient, str]) -> None:
    _, plaintext = added
    scanned = 0
    for table, text in stored_values():
        assert plaintext[4:] not in text, f"token found in {table}"
        scanned += 1
    assert scanned > 0


def test_it_is_in_no_log_line_or_session(
    added: tuple[HttpClient, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, plaintext = added
    # The calls were made while the fixture was set up; messages as logged, before any
    # formatter could mask them.
    logged = "\n".join(record.getMessage() for record in caplog.get_records("setup"))

    assert "reason=needs update" in logged
    assert plaintext[4:] not in logged
    assert all(plaintext not in str(s.get_decoded()) for s in Session.objects.all())


def test_no_later_page_or_answer_shows_it(
    added: tuple[HttpClient, str], alice: User, bob: User
) -> None:
    http, plaintext = added
    bobs = HttpClient()
    bobs.force_login(bob)

    answers = [
        http.get(PAGE),
        bobs.get(PAGE),
        http.get("/setup/demo/implementation/"),
        HttpClient().get("/demo/target/authentication/tokens", headers=basic("alice")),
    ]

    for response in answers:
        text = response.content.decode()
        assert response.status_code == 200
        assert TOKEN_PATTERN.search(text) is None
        assert plaintext[4:] not in text
    assert f"tpa_…{plaintext[-4:]}" in answers[0].content.decode()


def test_the_admin_shows_neither_the_token_nor_its_digest(
    added: tuple[HttpClient, str], root: User
) -> None:
    _, plaintext = added
    integration = Integration.objects.get()
    token = ProfileToken.objects.get(integration=integration, grace_until__isnull=True)
    admin = HttpClient()
    admin.force_login(root)

    for url in (
        "/admin/profiles/integration/",
        f"/admin/profiles/integration/{integration.pk}/change/",
        "/admin/profiles/profiletoken/",
        f"/admin/profiles/profiletoken/{token.pk}/change/",
        "/admin/profiles/auditevent/",
    ):
        response = admin.get(url)
        html = response.content.decode()
        assert response.status_code == 200, url
        assert plaintext[4:] not in html, url
        assert token.digest not in html, url
    assert "fetch" in admin.get("/admin/profiles/integration/").content.decode()
