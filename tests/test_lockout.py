"""Repeated failed sign-ins lock a username out from an address, on every way in (django-axes).

The management API's HTTP Basic and the web login forms count toward one lockout, so the API
is no way around it.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from axes.models import AccessAttempt
from axes.utils import reset
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client as HttpClient
from django.urls import reverse

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
