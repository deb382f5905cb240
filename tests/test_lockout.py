"""Repeated failed sign-ins lock a username out from an address, on every way in (django-axes).

The management API's HTTP Basic and the web login forms count toward one lockout, so the API
is no way around it. Failed Basic sign-ins are also budgeted per address, whatever the
username, so random usernames cannot make the server hash passwords without end.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from axes.models import AccessAttempt
from axes.utils import reset
from django.conf import settings
from django.contrib.auth.hashers import MD5PasswordHasher
from django.contrib.auth.models import User
from django.test import Client as HttpClient
from django.test.utils import override_settings
from django.urls import reverse

from profiles.access.throttle import BASIC_SIGN_IN_FAILURES
from profiles.models import Client
from tests.support import PASSWORD, basic
from tests.test_management_api import SETTINGS_URL, assert_error

LIMIT = settings.AXES_FAILURE_LIMIT


def api_call(client: HttpClient, password: str, username: str = "alice", **extra: Any) -> Any:
    return client.get(SETTINGS_URL, headers=basic(username, password), **extra)


def web_login(
    client: HttpClient, password: str, username: str = "alice", page: str = "login"
) -> Any:
    """The sign-in page's form (or the Django admin's, with ``page="admin:login"``)."""
    return client.post(reverse(page), {"username": username, "password": password})


def test_the_limit_and_cool_off_come_from_settings() -> None:
    assert LIMIT == 5
    assert timedelta(minutes=15) == settings.AXES_COOLOFF_TIME
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"


def test_it_locks_basic_callers_out_after_repeated_bad_passwords(
    client: HttpClient, alice: User
) -> None:
    for _ in range(LIMIT - 1):
        assert_error(api_call(client, "wrong"), 401, "Authentication.Failed")
    response = api_call(client, "wrong")
    error = assert_error(response, 429, "Authentication.LockedOut")
    assert "locked for 15 minutes" in error["message"]
    assert response["Retry-After"] == str(15 * 60)


def test_a_locked_out_caller_is_refused_even_with_the_right_password(
    client: HttpClient, alice: User
) -> None:
    for _ in range(LIMIT):
        api_call(client, "wrong")
    response = api_call(client, PASSWORD)
    assert_error(response, 429, "Authentication.LockedOut")
    assert response["Retry-After"] == str(15 * 60)


def test_the_api_and_the_web_login_share_one_counter(client: HttpClient, alice: User) -> None:
    for _ in range(LIMIT - 1):
        assert web_login(client, "wrong").status_code == 200  # the form, with its error
    assert_error(api_call(client, "wrong"), 429, "Authentication.LockedOut")
    locked_page = web_login(client, PASSWORD)
    assert locked_page.status_code == 429
    assert locked_page["Retry-After"] == str(15 * 60)
    text = locked_page.content.decode()
    assert "Too many failed sign-ins for this username from this address." in text
    assert "Try again in 15 minutes" in text
    assert "_auth_user_id" not in client.session


def test_failures_on_the_admin_login_count_too(client: HttpClient, alice: User) -> None:
    for _ in range(LIMIT - 1):
        web_login(client, "wrong", page="admin:login")
    assert_error(api_call(client, "wrong"), 429, "Authentication.LockedOut")


def test_failures_through_the_api_lock_the_web_login_too(client: HttpClient, alice: User) -> None:
    for _ in range(LIMIT):
        api_call(client, "wrong")
    response = web_login(client, PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_lockout_holds_one_username_from_one_address(
    client: HttpClient, alice: User, charlie: User
) -> None:
    for _ in range(LIMIT):
        api_call(client, "wrong")
    assert_error(api_call(client, PASSWORD), 429, "Authentication.LockedOut")
    assert client.get("/acme/target/clients/settings", headers=basic("charlie")).status_code == 200
    elsewhere = api_call(client, PASSWORD, REMOTE_ADDR="192.0.2.7")
    assert elsewhere.status_code == 200


def test_the_lockout_ends_after_the_cool_off(client: HttpClient, alice: User) -> None:
    for _ in range(LIMIT):
        api_call(client, "wrong")
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16)
    )
    assert api_call(client, PASSWORD).status_code == 200


def test_an_operator_can_lift_a_lockout(client: HttpClient, alice: User) -> None:
    for _ in range(LIMIT):
        api_call(client, "wrong")
    reset(username="alice")
    assert api_call(client, PASSWORD).status_code == 200


def test_successful_sign_ins_do_not_count(client: HttpClient, alice: User, demo: Client) -> None:
    for _ in range(LIMIT + 2):
        assert api_call(client, PASSWORD).status_code == 200
    assert not AccessAttempt.objects.exists()


def test_the_failure_log_keeps_no_password(client: HttpClient, alice: User) -> None:
    api_call(client, "hunter2-wrong")
    web_login(client, "hunter2-wrong")
    attempt = AccessAttempt.objects.get()
    assert attempt.failures_since_start == 2
    stored = " ".join(str(value) for value in vars(attempt).values())
    assert "hunter2" not in stored
    assert base64.b64encode(b"alice:hunter2-wrong").decode() not in stored


def test_an_anonymous_call_does_not_count_as_a_failure(client: HttpClient, alice: User) -> None:
    for _ in range(LIMIT + 1):
        client.get(SETTINGS_URL)
    assert api_call(client, PASSWORD).status_code == 200


def test_the_sign_in_page_says_that_signing_in_is_locked_and_for_how_long(
    client: HttpClient, alice: User
) -> None:
    for _ in range(LIMIT - 1):
        assert web_login(client, "wrong").status_code == 200
    response = web_login(client, "wrong")

    assert response.status_code == 429
    assert response["Retry-After"] == str(15 * 60)
    html = response.content.decode()
    assert "Sign-in locked" in html
    assert "Too many failed sign-ins for this username from this address." in html
    assert "Try again in 15 minutes;" in html
    assert response["Content-Security-Policy"].startswith("default-src 'self'")


def test_the_locked_page_names_the_configured_cool_off(
    client: HttpClient, alice: User, settings: Any
) -> None:
    settings.AXES_COOLOFF_TIME = timedelta(minutes=1)
    for _ in range(LIMIT):
        web_login(client, "wrong")

    response = web_login(client, PASSWORD)

    assert response.status_code == 429
    assert response["Retry-After"] == "60"
    assert "Try again in 1 minute;" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_admin_sign_in_shows_the_same_locked_page(client: HttpClient, alice: User) -> None:
    for _ in range(LIMIT):
        web_login(client, "wrong", page="admin:login")

    response = web_login(client, PASSWORD, page="admin:login")

    assert response.status_code == 429
    assert "Sign-in locked" in response.content.decode()


# The per-address budget of failed Basic sign-ins (docs/management-api.md#throttling-by-address)

BUDGET = 3


@pytest.fixture
def hashed() -> Iterator[list[str]]:
    """The passwords hashed while the test runs (the tests' hasher, watched)."""
    seen: list[str] = []
    encode, verify = MD5PasswordHasher.encode, MD5PasswordHasher.verify

    def watched_encode(self: MD5PasswordHasher, password: str, salt: str) -> str:
        seen.append(password)
        return encode(self, password, salt)

    def watched_verify(self: MD5PasswordHasher, password: str, encoded: str) -> bool:
        seen.append(password)
        return verify(self, password, encoded)

    with (
        mock.patch.object(MD5PasswordHasher, "encode", watched_encode),
        mock.patch.object(MD5PasswordHasher, "verify", watched_verify),
    ):
        yield seen


def random_username() -> str:
    return f"u-{secrets.token_hex(8)}"


def spend_the_budget(client: HttpClient, hashed: list[str], **extra: Any) -> None:
    for _ in range(BUDGET):
        before = len(hashed)
        response = api_call(client, "guess", username=random_username(), **extra)
        assert_error(response, 401, "Authentication.Failed")
        assert len(hashed) > before  # a random username still costs a hash


def test_the_basic_budget_comes_from_settings() -> None:
    assert settings.MANAGEMENT_API_BASIC_FAILURE_LIMIT == 20
    assert settings.MANAGEMENT_API_BASIC_FAILURE_WINDOW_SECONDS == 300


@override_settings(
    MANAGEMENT_API_BASIC_FAILURE_LIMIT=BUDGET, MANAGEMENT_API_BASIC_FAILURE_WINDOW_SECONDS=60
)
def test_it_refuses_basic_sign_ins_past_the_addresss_budget_before_hashing(
    client: HttpClient, alice: User, hashed: list[str]
) -> None:
    spend_the_budget(client, hashed)
    hashed.clear()
    for username, password in ((random_username(), "guess"), ("alice", PASSWORD)):
        response = api_call(client, password, username=username)
        error = assert_error(response, 429, "Authentication.LockedOut")
        assert "Too many failed sign-ins from this address" in error["message"]
        assert 1 <= int(response["Retry-After"]) <= 60
        assert response["Retry-After"] in error["message"]
    assert hashed == []
    assert not AccessAttempt.objects.filter(username="alice").exists()


@override_settings(
    MANAGEMENT_API_BASIC_FAILURE_LIMIT=BUDGET, MANAGEMENT_API_BASIC_FAILURE_WINDOW_SECONDS=60
)
def test_a_spent_basic_budget_holds_one_address_only(
    client: HttpClient, alice: User, hashed: list[str]
) -> None:
    spend_the_budget(client, hashed)
    assert api_call(client, "guess", username=random_username()).status_code == 429
    elsewhere = api_call(client, "guess", username=random_username(), REMOTE_ADDR="192.0.2.7")
    assert_error(elsewhere, 401, "Authentication.Failed")
    assert api_call(client, PASSWORD, REMOTE_ADDR="192.0.2.8").status_code == 200
    # A signed-in session never sends a password, so it is not held by the budget.
    client.force_login(alice)
    assert client.get(SETTINGS_URL).status_code == 200


@override_settings(
    MANAGEMENT_API_BASIC_FAILURE_LIMIT=BUDGET, MANAGEMENT_API_BASIC_FAILURE_WINDOW_SECONDS=60
)
def test_successful_basic_sign_ins_neither_count_nor_reset_the_budget(
    client: HttpClient, alice: User, hashed: list[str]
) -> None:
    for _ in range(BUDGET + 2):
        assert api_call(client, PASSWORD).status_code == 200
    for _ in range(BUDGET - 1):
        assert api_call(client, "guess", username=random_username()).status_code == 401
    assert api_call(client, PASSWORD).status_code == 200
    assert api_call(client, "guess", username=random_username()).status_code == 401
    assert api_call(client, PASSWORD).status_code == 429


@override_settings(
    MANAGEMENT_API_BASIC_FAILURE_LIMIT=2, MANAGEMENT_API_BASIC_FAILURE_WINDOW_SECONDS=60
)
def test_the_basic_budget_is_spent_until_its_window_ends(db: None) -> None:
    start = 6_000_000.0  # the start of a 60-second window
    assert BASIC_SIGN_IN_FAILURES.spent("192.0.2.1", now=start) is None
    BASIC_SIGN_IN_FAILURES.count("192.0.2.1", now=start)
    assert BASIC_SIGN_IN_FAILURES.spent("192.0.2.1", now=start + 1) is None
    BASIC_SIGN_IN_FAILURES.count("192.0.2.1", now=start + 1)
    assert BASIC_SIGN_IN_FAILURES.spent("192.0.2.1", now=start + 15) == 45
    assert BASIC_SIGN_IN_FAILURES.spent("192.0.2.2", now=start + 15) is None
    assert BASIC_SIGN_IN_FAILURES.spent("192.0.2.1", now=start + 60) is None
