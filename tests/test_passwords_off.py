"""PASSWORD_SIGN_IN=false (docs/operations.md#switching-passwords-off): people sign in only
through the identity provider, scripts only with its access tokens, and a break-glass
superuser keeps the Django admin. alice is an Approver of demo with a local password."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client as HttpClient
from django.urls import reverse

from profiles.access.checks import PLAIN_HTTP_ISSUER, issuer_over_https
from tests.provider import APPROVERS, IdentityProvider, bearer, sign_in
from tests.support import PASSWORD, basic, manage, settings_path
from tests.test_management_api import ISSUE_URL, SETTINGS_URL, assert_error
from tests.test_production_settings import deploy_check


@pytest.fixture
def passwords_off(single_sign_on: IdentityProvider, settings: Any) -> IdentityProvider:
    settings.PASSWORD_SIGN_IN = False
    return single_sign_on


@pytest.fixture
def http() -> HttpClient:
    return HttpClient()


def test_the_sign_in_page_offers_only_the_provider(
    passwords_off: IdentityProvider, http: HttpClient, db: None
) -> None:
    page = http.get(reverse("login")).content.decode()
    assert "Sign in with Test provider" in page
    assert 'name="password"' not in page


def test_a_posted_password_is_refused_on_the_sign_in_page(
    passwords_off: IdentityProvider, http: HttpClient, alice: User
) -> None:
    response = http.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 403
    assert "Password sign-in is switched off here" in response.content.decode()
    assert http.get("/").status_code == 302


def test_people_still_sign_in_through_the_provider(
    passwords_off: IdentityProvider, http: HttpClient, demo: Any
) -> None:
    passwords_off.person("dana", APPROVERS)
    assert sign_in(http, passwords_off, "dana").status_code == 302
    assert http.get(settings_path(demo)).status_code == 200


def test_http_basic_is_refused_with_a_clear_message(
    passwords_off: IdentityProvider, http: HttpClient, alice: User
) -> None:
    response = http.post(ISSUE_URL, headers=basic("alice"))
    error = assert_error(response, 401, "Authentication.Unsupported")
    assert "Password sign-in is switched off" in error["message"]
    assert response["WWW-Authenticate"] == 'Bearer realm="targetadmin"'


def test_a_call_without_credentials_is_told_to_bring_an_access_token(
    passwords_off: IdentityProvider, http: HttpClient, demo: Any
) -> None:
    response = http.get(SETTINGS_URL)
    error = assert_error(response, 401, "Authentication.Required")
    assert "sign in with the identity provider's access token (Bearer)" in error["message"]
    assert "HTTP Basic" not in error["message"]
    assert response["WWW-Authenticate"] == 'Bearer realm="targetadmin"'


def test_the_providers_access_tokens_still_open_the_management_api(
    passwords_off: IdentityProvider, http: HttpClient, demo: Any
) -> None:
    token = passwords_off.script_token("reporting", APPROVERS)
    assert http.get(SETTINGS_URL, headers=bearer(token)).status_code == 200


def test_a_break_glass_superuser_signs_in_to_the_admin_and_is_audited(
    passwords_off: IdentityProvider,
    http: HttpClient,
    db: None,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    call_command("createsuperuser", "--noinput", "--username", "breakglass", "--email", "")
    with caplog.at_level(logging.WARNING, logger="targetadmin.sign_in"):
        response = http.post(
            reverse("admin:login"), {"username": "breakglass", "password": PASSWORD}
        )
    assert response.status_code == 302
    assert http.get(reverse("admin:index")).status_code == 200
    assert any("break-glass: breakglass" in record.getMessage() for record in caplog.records)


def test_a_staff_member_without_superuser_status_is_refused_a_password(
    passwords_off: IdentityProvider, http: HttpClient, db: None
) -> None:
    User.objects.create_user("staff", password=PASSWORD, is_staff=True)
    response = http.post(reverse("admin:login"), {"username": "staff", "password": PASSWORD})
    assert response.status_code == 200  # the form again, with its error
    assert http.get(reverse("admin:index")).status_code == 302


def test_passwords_cannot_be_switched_off_without_a_provider() -> None:
    done = manage(os.environ | {"PASSWORD_SIGN_IN": "false"}, "check")
    assert done.returncode != 0
    assert "PASSWORD_SIGN_IN=false needs single sign-on" in done.stderr


def test_the_deploy_check_warns_of_an_issuer_that_is_not_https() -> None:
    provider = {"OIDC_CLIENT_ID": "targetadmin", "OIDC_CLIENT_SECRET": "secret"}
    plain = deploy_check(OIDC_ISSUER="http://idp.example.com/realms/example", **provider)
    assert plain.returncode != 0
    assert "profiles.W002" in plain.stderr
    encrypted = deploy_check(OIDC_ISSUER="https://idp.example.com/realms/example", **provider)
    assert encrypted.returncode == 0, encrypted.stderr


def test_the_issuer_check_is_quiet_with_debug_on_or_without_a_provider(settings: Any) -> None:
    settings.OIDC_ISSUER = "http://idp.example.com"
    settings.DEBUG = False
    assert [warning.id for warning in issuer_over_https()] == [PLAIN_HTTP_ISSUER]
    settings.DEBUG = True
    assert issuer_over_https() == []
    settings.DEBUG = False
    settings.OIDC_ISSUER = ""
    assert issuer_over_https() == []
