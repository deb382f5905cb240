"""The Profile API Settings screen, as an Approver uses it (docs/screen.md)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from profiles.access.actors import SYSTEM
from profiles.models import AuditEvent, Client, ProfileApiSettings, ProfileToken
from profiles.tokens import verification
from profiles.tokens.expiry import describe_remaining
from profiles.tokens.models import TokenRejected

TOKEN_PATTERN = re.compile(r"tpa_[0-9A-Za-z]{49}")
ADDRESS = "203.0.113.7"


def page(client: Client) -> str:
    return reverse("implementation", kwargs={"client_code": client.code})


@pytest.fixture
def browser(alice: User) -> HttpClient:
    http = HttpClient(REMOTE_ADDR=ADDRESS)
    http.force_login(alice)
    return http


def enable_authentication(client: Client) -> None:
    ProfileApiSettings.for_client(client).set_require_authentication(True, actor=SYSTEM)


def issue(client: Client, days: int = 90) -> tuple[ProfileToken, str]:
    return ProfileToken.objects.issue(client, expires_in_days=days, actor=SYSTEM)


def test_it_shows_the_card_and_its_sentence(browser: HttpClient, demo: Client) -> None:
    response = browser.get(page(demo))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Profile API Settings" in html
    assert (
        "Enable or disable authentication for batch updates via API and generate a profile "
        "authentication token." in html
    )
    assert re.search(r'<label\s+for="id_require_authentication"', html)
    assert "Signed in as <strong>alice</strong>" in html
    assert response["Cache-Control"].count("no-store") == 1


def test_it_enables_authentication_and_audits_who_and_from_where(
    browser: HttpClient, demo: Client, alice: User
) -> None:
    response = browser.post(
        page(demo), {"require_authentication": "enabled", "save_authentication": "1"}
    )

    assert response.status_code == 302
    settings = ProfileApiSettings.for_client(demo)
    assert settings.require_authentication is True
    assert settings.changed_by == alice
    event = AuditEvent.objects.get(client=demo)
    assert (event.action, event.actor, event.remote_addr) == (
        AuditEvent.Action.AUTH_ENABLED,
        alice,
        ADDRESS,
    )
    followed = browser.get(response["Location"])
    assert "Require Authentication enabled." in followed.content.decode()


def test_it_disables_authentication_and_audits_it(
    browser: HttpClient, demo: Client, alice: User
) -> None:
    enable_authentication(demo)

    browser.post(page(demo), {"require_authentication": "disabled", "save_authentication": "1"})

    assert ProfileApiSettings.for_client(demo).require_authentication is False
    event = AuditEvent.objects.filter(client=demo).first()
    assert event is not None
    assert (event.action, event.actor, event.remote_addr) == (
        AuditEvent.Action.AUTH_DISABLED,
        alice,
        ADDRESS,
    )


def test_it_saves_the_same_value_without_an_audit_event(browser: HttpClient, demo: Client) -> None:
    browser.post(page(demo), {"require_authentication": "disabled", "save_authentication": "1"})

    assert not AuditEvent.objects.filter(client=demo).exists()


def test_it_refuses_an_unknown_require_authentication_value(
    browser: HttpClient, demo: Client
) -> None:
    response = browser.post(
        page(demo), {"require_authentication": "yes", "save_authentication": "1"}
    )

    assert response.status_code == 400
    assert ProfileApiSettings.for_client(demo).require_authentication is False


def test_it_offers_generate_only_once_authentication_is_enabled(
    browser: HttpClient, demo: Client
) -> None:
    assert "Generate Profile Authentication Token" not in browser.get(page(demo)).content.decode()

    enable_authentication(demo)

    html = browser.get(page(demo)).content.decode()
    assert "Generate Profile Authentication Token" in html
    assert '<option value="90" selected>90 days</option>' in html


def test_it_generates_a_token_and_shows_it_once(
    browser: HttpClient, demo: Client, alice: User
) -> None:
    enable_authentication(demo)

    response = browser.post(page(demo), {"expires_in_days": "90", "generate": "1"})

    assert response.status_code == 200
    html = response.content.decode()
    (plaintext,) = TOKEN_PATTERN.findall(html)
    assert "it will not be shown again" in html
    assert "data-copy-target" in html
    token = ProfileToken.objects.get(client=demo)
    assert verification.verify(demo.pk, plaintext) == token
    assert token.created_by == alice
    event = AuditEvent.objects.filter(client=demo).first()
    assert event is not None
    assert (event.action, event.actor, event.remote_addr, event.token_last_four) == (
        AuditEvent.Action.TOKEN_GENERATED,
        alice,
        ADDRESS,
        plaintext[-4:],
    )

    again = browser.get(page(demo)).content.decode()
    assert plaintext not in again
    assert TOKEN_PATTERN.search(again) is None
    assert f"tpa_…{plaintext[-4:]}" in again
    assert "by alice on" in again


@pytest.mark.parametrize("days", [1, 7, 30, 90, 180, 365])
def test_it_computes_the_expiry_from_expires_in(
    browser: HttpClient, demo: Client, days: int
) -> None:
    enable_authentication(demo)

    browser.post(page(demo), {"expires_in_days": str(days), "generate": "1"})

    token = ProfileToken.objects.get(client=demo)
    assert token.expires_at - token.created_at == timedelta(days=days)


@pytest.mark.parametrize("days", ["0", "2", "366", "ninety", ""])
def test_it_refuses_an_expiry_outside_the_choices(
    browser: HttpClient, demo: Client, days: str
) -> None:
    enable_authentication(demo)

    response = browser.post(page(demo), {"expires_in_days": days, "generate": "1"})

    assert response.status_code == 400
    assert not ProfileToken.objects.exists()


def test_it_asks_before_re_generating_and_changes_nothing_until_confirmed(
    browser: HttpClient, demo: Client
) -> None:
    enable_authentication(demo)
    current, _ = issue(demo)

    response = browser.post(page(demo), {"expires_in_days": "30", "regenerate": "ask"})

    assert response.status_code == 200
    html = response.content.decode()
    assert "makes API calls that use the current token fail" in html
    assert "Scripts that use it must be updated" in html
    assert 'name="regenerate" value="confirmed"' in html
    assert '<input type="hidden" name="expires_in_days" value="30">' in html
    assert list(ProfileToken.objects.unrevoked()) == [current]


def test_it_asks_before_a_stale_generate_replaces_an_active_token(
    browser: HttpClient, demo: Client
) -> None:
    enable_authentication(demo)
    current, _ = issue(demo)

    response = browser.post(page(demo), {"expires_in_days": "90", "generate": "1"})

    assert "makes API calls that use the current token fail" in response.content.decode()
    assert list(ProfileToken.objects.unrevoked()) == [current]


def test_it_re_generates_once_confirmed_and_the_old_token_stops_working(
    browser: HttpClient, demo: Client, alice: User
) -> None:
    enable_authentication(demo)
    old, old_plaintext = issue(demo)

    response = browser.post(page(demo), {"expires_in_days": "7", "regenerate": "confirmed"})

    (new_plaintext,) = TOKEN_PATTERN.findall(response.content.decode())
    old.refresh_from_db()
    new = ProfileToken.objects.get(client=demo, revoked_at__isnull=True)
    # Revoked at the very instant the new one was created: one transaction, no gap.
    assert old.revoked_at == new.created_at
    assert new.expires_at - new.created_at == timedelta(days=7)
    with pytest.raises(TokenRejected):
        verification.verify(demo.pk, old_plaintext)
    assert verification.verify(demo.pk, new_plaintext) == new
    event = AuditEvent.objects.filter(client=demo).first()
    assert event is not None
    assert (event.action, event.actor, event.remote_addr, event.token_last_four) == (
        AuditEvent.Action.TOKEN_REGENERATED,
        alice,
        ADDRESS,
        new_plaintext[-4:],
    )


def test_it_replaces_an_expired_token_without_asking(browser: HttpClient, demo: Client) -> None:
    enable_authentication(demo)
    expired, _ = issue(demo, days=1)
    ProfileToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now())

    response = browser.post(page(demo), {"expires_in_days": "90", "generate": "1"})

    assert len(TOKEN_PATTERN.findall(response.content.decode())) == 1
    expired.refresh_from_db()
    assert expired.revoked_at is not None


def test_it_refuses_a_post_without_a_known_button(browser: HttpClient, demo: Client) -> None:
    response = browser.post(page(demo), {"require_authentication": "enabled"})

    assert response.status_code == 400
    assert ProfileApiSettings.for_client(demo).require_authentication is False
    assert not AuditEvent.objects.exists()


def test_it_renders_the_time_remaining(browser: HttpClient, demo: Client) -> None:
    token, _ = issue(demo)
    remaining = timedelta(days=62, hours=9, minutes=53, seconds=50)
    ProfileToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() + remaining)

    html = browser.get(page(demo)).content.decode()

    assert "62 days, 9 hours, 53 minutes" in html


@pytest.mark.parametrize(
    ("remaining", "text"),
    [
        (timedelta(days=62, hours=9, minutes=53, seconds=59), "62 days, 9 hours, 53 minutes"),
        (timedelta(days=1, hours=1, minutes=1), "1 day, 1 hour, 1 minute"),
        (timedelta(seconds=59), "0 days, 0 hours, 0 minutes"),
        (timedelta(seconds=-5), "0 days, 0 hours, 0 minutes"),
    ],
)
def test_it_describes_time_remaining_in_days_hours_and_minutes(
    remaining: timedelta, text: str
) -> None:
    assert describe_remaining(remaining) == text


NO_VALID_TOKEN = "Authentication is required but there is no valid token"


def test_it_warns_when_authentication_is_required_without_a_token(
    browser: HttpClient, demo: Client
) -> None:
    assert NO_VALID_TOKEN not in browser.get(page(demo)).content.decode()

    enable_authentication(demo)

    assert NO_VALID_TOKEN in browser.get(page(demo)).content.decode()


def test_it_shows_no_warning_for_a_healthy_token(browser: HttpClient, demo: Client) -> None:
    enable_authentication(demo)
    issue(demo, days=30)

    html = browser.get(page(demo)).content.decode()

    assert 'role="alert"' not in html


def test_it_warns_when_the_token_expires_within_seven_days(
    browser: HttpClient, demo: Client
) -> None:
    enable_authentication(demo)
    issue(demo, days=7)

    html = browser.get(page(demo)).content.decode()

    assert "The token expires in 6 days, 23 hours, 59 minutes" in html
    assert NO_VALID_TOKEN not in html


def test_it_warns_when_the_token_has_expired(browser: HttpClient, demo: Client) -> None:
    enable_authentication(demo)
    token, _ = issue(demo, days=1)
    ProfileToken.objects.filter(pk=token.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    html = browser.get(page(demo)).content.decode()

    assert f"The token tpa_…{token.last_four} expired on" in html
    assert NO_VALID_TOKEN in html
    assert "Generate Profile Authentication Token" in html


def test_it_lists_recent_audit_events_with_actor_and_address(
    browser: HttpClient, demo: Client
) -> None:
    browser.post(page(demo), {"require_authentication": "enabled", "save_authentication": "1"})
    browser.post(page(demo), {"expires_in_days": "30", "generate": "1"})
    token = ProfileToken.objects.get(client=demo)

    html = browser.get(page(demo)).content.decode()

    assert "Require Authentication enabled" in html
    assert "Token generated" in html
    assert f"tpa_…{token.last_four}" in html
    assert html.count(f"<td>{ADDRESS}</td>") == 2
    assert html.count("<td>alice</td>") == 2


def test_it_enforces_csrf_on_every_button(alice: User, demo: Client) -> None:
    http = HttpClient(enforce_csrf_checks=True)
    http.force_login(alice)
    enable_authentication(demo)
    issue(demo)
    attempts = [
        {"require_authentication": "disabled", "save_authentication": "1"},
        {"expires_in_days": "90", "generate": "1"},
        {"expires_in_days": "90", "regenerate": "confirmed"},
    ]

    for data in attempts:
        assert http.post(page(demo), data).status_code == 403

    assert ProfileApiSettings.for_client(demo).require_authentication is True
    assert ProfileToken.objects.count() == 1
    http.get(page(demo))
    data = {**attempts[0], "csrfmiddlewaretoken": http.cookies["csrftoken"].value}
    assert http.post(page(demo), data).status_code == 302
    assert ProfileApiSettings.for_client(demo).require_authentication is False
