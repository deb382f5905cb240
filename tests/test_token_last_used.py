"""When and from where each token last opened a profile API call, written at most once a
minute per token (docs/tokens.md#last-used)."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import OperationalError, connection
from django.db.models import QuerySet
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from profiles.access.actors import SYSTEM
from profiles.models import Client, ProfileToken
from profiles.tokens import expiry, verification
from tests.profile_api import PC_ID, a_profile, require_authentication
from tests.support import basic

ADDRESS = "203.0.113.5"
HOUR = 60 * 60


def issue(client: Client, grace: int = 0) -> tuple[ProfileToken, str]:
    return ProfileToken.objects.issue(
        client, expires_in_days=90, actor=SYSTEM, previous_token_grace_seconds=grace
    )


def fetch(token: str, address: str = ADDRESS) -> int:
    http = HttpClient(REMOTE_ADDR=address)
    response = http.get(
        f"/rest/v1/profiles/{PC_ID}?client=demo", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    return response.status_code


def token_writes(queries: CaptureQueriesContext) -> int:
    return sum(
        q["sql"].startswith("UPDATE") and "profiles_profiletoken" in q["sql"]
        for q in queries.captured_queries
    )


@pytest.fixture
def guarded(demo: Client) -> Client:
    a_profile(demo)
    require_authentication(demo)
    return demo


def test_it_records_when_and_from_where_a_token_opened_a_call(guarded: Client) -> None:
    token, plaintext = issue(guarded)
    before = timezone.now()

    assert fetch(plaintext) == 200

    token.refresh_from_db()
    assert token.last_used_from == ADDRESS
    assert token.last_used_at is not None
    assert before <= token.last_used_at <= timezone.now()


def test_it_records_the_use_of_a_token_in_its_grace_period_apart(guarded: Client) -> None:
    old, old_plaintext = issue(guarded)
    new, _ = issue(guarded, grace=HOUR)

    assert fetch(old_plaintext, "192.0.2.9") == 200

    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.last_used_from, new.last_used_at) == ("192.0.2.9", None)


def test_it_writes_the_last_use_at_most_once_a_minute_however_many_calls(
    guarded: Client,
) -> None:
    token, plaintext = issue(guarded)
    start = timezone.now()

    with CaptureQueriesContext(connection) as queries:
        for _ in range(50):
            verification.authenticate("demo", [plaintext], start, address=ADDRESS)
        for seconds in (1, 30, 59):
            verification.authenticate(
                "demo", [plaintext], start + timedelta(seconds=seconds), address=ADDRESS
            )
    assert token_writes(queries) == 1

    with CaptureQueriesContext(connection) as queries:
        verification.authenticate("demo", [plaintext], start + timedelta(seconds=60))
        verification.authenticate("demo", [plaintext], start + timedelta(seconds=61))
    assert token_writes(queries) == 1
    token.refresh_from_db()
    assert token.last_used_at == start + timedelta(seconds=60)


def test_the_write_is_conditional_so_a_stale_read_writes_nothing(guarded: Client) -> None:
    token, _ = issue(guarded)
    now = timezone.now()
    stale = ProfileToken.objects.get(pk=token.pk)  # read before another worker's write

    assert verification.record_use(token, ADDRESS, now) is True
    assert verification.record_use(stale, "192.0.2.1", now + timedelta(seconds=1)) is False

    token.refresh_from_db()
    assert (token.last_used_at, token.last_used_from) == (now, ADDRESS)


def test_a_refused_call_and_an_open_client_record_nothing(demo: Client) -> None:
    a_profile(demo)
    token, plaintext = issue(demo)

    assert fetch(plaintext) == 200  # Require Authentication off: the token is not looked at
    require_authentication(demo)
    ProfileToken.objects.revoke_active(demo, actor=SYSTEM)
    assert fetch(plaintext) == 401

    token.refresh_from_db()
    assert token.last_used_at is None


def test_an_authenticated_call_spends_a_write_only_on_its_first_use_of_the_minute(
    guarded: Client,
) -> None:
    _, plaintext = issue(guarded)

    with CaptureQueriesContext(connection) as first:
        assert fetch(plaintext) == 200
    with CaptureQueriesContext(connection) as second:
        assert fetch(plaintext) == 200

    assert token_writes(first) == 1
    assert token_writes(second) == 0


def test_a_failed_write_never_fails_the_call(
    guarded: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    token, plaintext = issue(guarded)

    def busy(self: QuerySet[Any], **fields: Any) -> int:
        raise OperationalError("database is locked")

    monkeypatch.setattr(QuerySet, "update", busy)
    assert fetch(plaintext) == 200
    monkeypatch.undo()

    token.refresh_from_db()
    assert token.last_used_at is None
    assert f"could not record the use of token …{token.last_four}" in caplog.text


def test_an_address_that_is_not_an_ip_address_is_recorded_as_none(guarded: Client) -> None:
    token, plaintext = issue(guarded)

    assert fetch(plaintext, address="unix:/run/gunicorn.sock") == 200

    token.refresh_from_db()
    assert token.last_used_at is not None
    assert token.last_used_from is None


@pytest.mark.parametrize(
    ("ago", "said"),
    [
        (timedelta(seconds=0), "within the last minute"),
        (timedelta(seconds=59), "within the last minute"),
        (timedelta(seconds=60), "1 minute ago"),
        (timedelta(minutes=3, seconds=30), "3 minutes ago"),
        (timedelta(minutes=119), "119 minutes ago"),
        (timedelta(hours=2), "2 hours ago"),
        (timedelta(hours=47, minutes=59), "47 hours ago"),
        (timedelta(days=2), "2 days ago"),
        (timedelta(days=40), "40 days ago"),
    ],
)
def test_it_says_how_long_ago_to_the_minute(ago: timedelta, said: str) -> None:
    now = timezone.now()
    assert expiry.describe_ago(now - ago, now) == said


def test_it_says_never_used_and_where_from() -> None:
    now = timezone.now()
    assert expiry.describe_last_used(None, None, now) == "Never used"
    assert (
        expiry.describe_last_used(now - timedelta(minutes=3), ADDRESS, now)
        == "Last used 3 minutes ago from 203.0.113.5"
    )
    assert expiry.describe_last_used(now, None, now) == "Last used within the last minute"


def test_the_card_the_api_and_the_command_line_show_the_last_use(
    guarded: Client, alice: User
) -> None:
    token, plaintext = issue(guarded)
    browser = HttpClient()
    browser.force_login(alice)
    settings_page = reverse("implementation", kwargs={"client_code": "demo"})
    assert "Never used" in browser.get(settings_page).content.decode()
    status = StringIO()
    call_command("token_status", "demo", stdout=status)
    assert "Last used: never" in status.getvalue()

    assert fetch(plaintext) == 200
    ProfileToken.objects.filter(pk=token.pk).update(
        last_used_at=timezone.now() - timedelta(minutes=3, seconds=10)
    )
    token.refresh_from_db()

    html = browser.get(settings_page).content.decode()
    assert "Last used 3 minutes ago from 203.0.113.5" in html
    body = HttpClient().get("/demo/target/authentication/token", headers=basic("alice")).json()
    assert body["lastUsedAt"] == token.last_used_at.isoformat()
    assert body["lastUsedFrom"] == ADDRESS
    status = StringIO()
    call_command("token_status", "demo", stdout=status)
    assert (
        f"Last used: 3 minutes ago from {ADDRESS} ({token.last_used_at.isoformat()})"
        in status.getvalue()
    )
