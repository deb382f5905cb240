"""The token and settings management API (docs/management-api.md): who may call it, what it answers."""

from __future__ import annotations

import base64
import io
import json
import logging
from datetime import datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client as HttpClient
from django.test import RequestFactory
from django.utils import timezone

from profiles.access.actors import Actor
from profiles.api.management.views import client_settings
from profiles.models import (
    AuditEvent,
    Client,
    ProfileApiSettings,
    ProfileToken,
)
from profiles.tokens import secret, verification
from profiles.tokens.models import TokenRejected
from tests.profile_api import PC_ID, a_profile
from tests.support import basic

VND = "application/vnd.adobe.target.v1+json"
TOKEN_URL = "/demo/target/authentication/token"
ISSUE_URL = f"{TOKEN_URL}?authorizationScope=profile_api"
SETTINGS_URL = "/demo/target/clients/settings"
DAY = 24 * 60 * 60


def issue(client: HttpClient, url: str = ISSUE_URL, username: str = "alice", **kwargs: Any) -> Any:
    return client.post(url, headers=basic(username), **kwargs)


def patch_settings(client: HttpClient, body: object, username: str = "alice", **kwargs: Any) -> Any:
    kwargs.setdefault("content_type", "application/json")
    return client.patch(SETTINGS_URL, json.dumps(body), headers=basic(username), **kwargs)


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is Adobe's error shape for ``status`` with one error ``code``."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"httpStatus", "requestId", "requestTime", "errors"}
    assert body["httpStatus"] == status
    assert body["requestId"] == response["X-Request-Id"]
    assert datetime.fromisoformat(body["requestTime"]).tzinfo is not None
    assert len(body["errors"]) == 1
    assert set(body["errors"][0]) == {"errorCode", "message"}
    assert body["errors"][0]["errorCode"] == code
    return body["errors"][0]


@pytest.fixture
def everyone(alice: User, bob: User, charlie: User, oscar: User, peggy: User, root: User) -> None:
    """Every kind of caller exists."""


CALLS = [
    pytest.param("post", ISSUE_URL, 201, id="issue-token"),
    pytest.param("get", TOKEN_URL, 404, id="describe-token-none-yet"),
    pytest.param("get", SETTINGS_URL, 200, id="read-settings"),
    pytest.param("patch", SETTINGS_URL, 200, id="change-settings"),
]


def call(client: HttpClient, method: str, url: str, headers: dict[str, str]) -> Any:
    if method == "patch":
        body = json.dumps({"enableProfileApiAuthentication": True})
        return client.patch(url, body, content_type="application/json", headers=headers)
    return getattr(client, method)(url, headers=headers)


@pytest.mark.parametrize(("method", "url", "allowed_status"), CALLS)
@pytest.mark.usefixtures("everyone")
def test_it_challenges_anonymous_callers_with_basic(
    client: HttpClient, method: str, url: str, allowed_status: int
) -> None:
    response = call(client, method, url, {})
    error = assert_error(response, 401, "Authentication.Required")
    assert response["WWW-Authenticate"] == 'Basic realm="targetadmin", charset="UTF-8"'
    assert "HTTP Basic" in error["message"]


@pytest.mark.parametrize(("method", "url", "allowed_status"), CALLS)
@pytest.mark.usefixtures("everyone")
def test_it_refuses_a_wrong_password_with_401(
    client: HttpClient, method: str, url: str, allowed_status: int
) -> None:
    response = call(client, method, url, basic("alice", "wrong horse"))
    error = assert_error(response, 401, "Authentication.Failed")
    assert response["WWW-Authenticate"].startswith("Basic ")
    assert error["message"] == "Invalid username or password."


@pytest.mark.parametrize(("method", "url", "allowed_status"), CALLS)
@pytest.mark.parametrize("username", ["oscar", "bob", "peggy", "charlie"])
@pytest.mark.usefixtures("everyone")
def test_it_forbids_everyone_but_approvers_of_the_client(
    client: HttpClient, method: str, url: str, allowed_status: int, username: str, demo: Client
) -> None:
    response = call(client, method, url, basic(username))
    error = assert_error(response, 403, "Access.Denied")
    assert (
        error["message"] == "Only Approvers of client 'demo' can manage its profile authentication."
    )
    assert not ProfileToken.objects.exists()
    assert not ProfileApiSettings.for_client(demo).require_authentication
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(("method", "url", "allowed_status"), CALLS)
@pytest.mark.parametrize("username", ["alice", "root"])
@pytest.mark.usefixtures("everyone")
def test_it_lets_approvers_and_superusers_in(
    client: HttpClient, method: str, url: str, allowed_status: int, username: str
) -> None:
    response = call(client, method, url, basic(username))
    assert response.status_code == allowed_status, response.content


def test_it_answers_403_for_an_unknown_client_so_codes_do_not_leak(
    client: HttpClient, alice: User
) -> None:
    response = client.get("/nope/target/clients/settings", headers=basic("alice"))
    assert_error(response, 403, "Access.Denied")


def test_it_tells_a_superuser_an_unknown_client_does_not_exist(
    client: HttpClient, root: User
) -> None:
    response = client.get("/nope/target/clients/settings", headers=basic("root"))
    error = assert_error(response, 404, "Client.NotFound")
    assert error["message"] == "No client with code 'nope'."


@pytest.mark.parametrize("code", ["Demo", "d%C3%A9mo", "a%00b", "x" * 65, "%3Cb%3E"])
def test_it_answers_a_code_no_client_can_have_in_json_like_an_unknown_client(
    client: HttpClient, alice: User, root: User, code: str
) -> None:
    response = client.get(f"/{code}/target/clients/settings", headers=basic("alice"))
    assert_error(response, 403, "Access.Denied")
    response = client.get(f"/{code}/target/clients/settings", headers=basic("root"))
    assert_error(response, 404, "Client.NotFound")


def test_it_refuses_an_inactive_user(client: HttpClient, alice: User) -> None:
    alice.is_active = False
    alice.save()
    assert_error(client.get(SETTINGS_URL, headers=basic("alice")), 401, "Authentication.Failed")


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic " + base64.b64encode(b":password-without-user").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
        "Basic " + base64.b64encode(b"alice\x00:x").decode(),
        "Basic " + base64.b64encode(b"alice:x\x00").decode(),
        "Basic " + base64.b64encode(b"a" * 151 + b":x").decode(),
        "Basic",
    ],
)
def test_it_refuses_malformed_basic_credentials(
    client: HttpClient, alice: User, header: str
) -> None:
    response = client.get(SETTINGS_URL, headers={"Authorization": header})
    assert_error(response, 401, "Authentication.Malformed")
    assert response["WWW-Authenticate"].startswith("Basic ")


def test_it_takes_no_other_authorization_scheme(client: HttpClient, alice: User) -> None:
    response = client.get(SETTINGS_URL, headers={"Authorization": "Bearer tpa_something"})
    error = assert_error(response, 401, "Authentication.Unsupported")
    assert "'Bearer'" in error["message"]


# Issuing a token


def test_it_issues_a_token_in_adobes_shape(client: HttpClient, alice: User, demo: Client) -> None:
    response = issue(client)
    assert response.status_code == 201
    assert response["Content-Type"] == VND
    body = response.json()
    assert set(body) == {"accessToken", "tokenType", "scope", "expiresIn"}
    assert secret.check_format(body["accessToken"])
    assert body["tokenType"] == "bearer"
    assert body["scope"] == "profile_api"
    assert body["expiresIn"] == 90 * DAY
    stored = ProfileToken.objects.get()
    assert stored.client == demo
    assert stored.created_by == alice
    assert stored.last_four == body["accessToken"][-4:]
    assert stored.expires_at - stored.created_at == timedelta(days=90)
    assert verification.verify(demo.pk, body["accessToken"]) == stored


def test_it_accepts_scope_as_an_alias_and_the_expiry_choices(
    client: HttpClient, alice: User
) -> None:
    response = issue(client, f"{TOKEN_URL}?scope=profile_api&expiresInDays=7")
    assert response.status_code == 201
    assert response.json()["expiresIn"] == 7 * DAY
    stored = ProfileToken.objects.get()
    assert stored.expires_at - stored.created_at == timedelta(days=7)


def test_it_audits_the_token_as_the_screen_does(client: HttpClient, alice: User) -> None:
    body = issue(client, f"{ISSUE_URL}&expiresInDays=30").json()
    event = AuditEvent.objects.get()
    assert event.action == AuditEvent.Action.TOKEN_GENERATED
    assert event.actor == alice
    assert event.actor_label == "alice"
    assert event.remote_addr == "127.0.0.1"
    assert event.token_last_four == body["accessToken"][-4:]
    assert event.detail == "expires in 30 days"


def test_it_replaces_the_previous_token_which_stops_working_at_once(
    client: HttpClient, alice: User, demo: Client
) -> None:
    first = issue(client).json()["accessToken"]
    second = issue(client).json()["accessToken"]
    assert first != second
    with pytest.raises(TokenRejected) as rejected:
        verification.verify(demo.pk, first)
    assert rejected.value.reason == "invalid"
    assert verification.verify(demo.pk, second).last_four == second[-4:]
    assert ProfileToken.objects.active().count() == 1
    latest = AuditEvent.objects.first()
    assert latest is not None
    assert latest.action == AuditEvent.Action.TOKEN_REGENERATED


def test_a_token_of_one_client_does_not_open_another(
    client: HttpClient, alice: User, other_client: Client
) -> None:
    plaintext = issue(client).json()["accessToken"]
    with pytest.raises(TokenRejected):
        verification.verify(other_client.pk, plaintext)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "authorizationScope=profile_api is required."),
        ("?authorizationScope=", "authorizationScope=profile_api is required."),
        (
            "?authorizationScope=admin",
            "The only scope a token can have is 'profile_api', not 'admin'.",
        ),
        (
            "?authorizationScope=profile_api&scope=other",
            "The only scope a token can have is 'profile_api', not 'other'.",
        ),
        (
            "?authorizationScope=profile_api&expiresInDays=5",
            "expiresInDays: must be one of 1, 7, 30, 90, 180, 365 (days).",
        ),
        (
            "?authorizationScope=profile_api&expiresInDays=ninety",
            "expiresInDays: must be one of 1, 7, 30, 90, 180, 365 (days).",
        ),
    ],
)
def test_it_refuses_bad_token_parameters_and_changes_nothing(
    client: HttpClient, alice: User, query: str, message: str
) -> None:
    error = assert_error(issue(client, TOKEN_URL + query), 400, "Parameter.Invalid")
    assert error["message"] == message
    assert not ProfileToken.objects.exists()
    assert not AuditEvent.objects.exists()


# Describing the token


def test_it_describes_the_active_token_without_its_secret(client: HttpClient, alice: User) -> None:
    plaintext = issue(client, f"{ISSUE_URL}&expiresInDays=7").json()["accessToken"]
    response = client.get(TOKEN_URL, headers=basic("alice"))
    assert response.status_code == 200
    body = response.json()
    stored = ProfileToken.objects.get()
    assert set(body) == {
        "tokenType",
        "scope",
        "expiresIn",
        "lastFour",
        "createdAt",
        "expiresAt",
        "lastUsedAt",
        "lastUsedFrom",
    }
    assert body["tokenType"] == "bearer"
    assert body["scope"] == "profile_api"
    assert 7 * DAY - 60 < body["expiresIn"] <= 7 * DAY
    assert body["lastFour"] == plaintext[-4:]
    assert datetime.fromisoformat(body["createdAt"]) == stored.created_at
    assert datetime.fromisoformat(body["expiresAt"]) == stored.expires_at
    assert (body["lastUsedAt"], body["lastUsedFrom"]) == (None, None)
    assert plaintext not in response.content.decode()
    assert plaintext[4:-4] not in response.content.decode()


def test_it_answers_404_when_there_is_no_token(client: HttpClient, alice: User) -> None:
    error = assert_error(client.get(TOKEN_URL, headers=basic("alice")), 404, "Token.NotFound")
    assert error["message"] == "Client 'demo' has no active profile authentication token."


def test_it_answers_404_for_a_revoked_token(client: HttpClient, alice: User, demo: Client) -> None:
    issue(client)
    ProfileToken.objects.revoke_active(demo, actor=Actor.person(alice))
    assert_error(client.get(TOKEN_URL, headers=basic("alice")), 404, "Token.NotFound")


def test_it_answers_404_for_an_expired_token_and_says_when_it_expired(
    client: HttpClient, alice: User
) -> None:
    issue(client, f"{ISSUE_URL}&expiresInDays=1")
    ended = timezone.now() - timedelta(minutes=1)
    ProfileToken.objects.update(expires_at=ended)
    error = assert_error(client.get(TOKEN_URL, headers=basic("alice")), 404, "Token.NotFound")
    assert error["message"].endswith(f"It expired at {ended.isoformat()}.")


# Settings


def test_it_reads_the_settings(client: HttpClient, alice: User, demo: Client) -> None:
    response = client.get(SETTINGS_URL, headers=basic("alice"))
    assert response.status_code == 200
    assert response.json() == {
        "enableProfileApiAuthentication": False,
        "profileApiAllowedNetworks": [],
        "profileTokenRetrievable": False,
    }
    ProfileApiSettings.for_client(demo).set_require_authentication(True, actor=Actor.person(alice))
    response = client.get(SETTINGS_URL, headers=basic("alice"))
    assert response.json() == {
        "enableProfileApiAuthentication": True,
        "profileApiAllowedNetworks": [],
        "profileTokenRetrievable": False,
    }


def test_it_turns_authentication_on_and_off_audited_like_the_screen(
    client: HttpClient, alice: User, demo: Client
) -> None:
    response = patch_settings(client, {"enableProfileApiAuthentication": True})
    assert response.status_code == 200
    assert response.json() == {
        "enableProfileApiAuthentication": True,
        "profileApiAllowedNetworks": [],
        "profileTokenRetrievable": False,
    }
    found = ProfileApiSettings.for_client(demo)
    assert found.require_authentication
    assert found.changed_by == alice
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.remote_addr) == (
        AuditEvent.Action.AUTH_ENABLED,
        alice,
        "127.0.0.1",
    )

    response = patch_settings(client, {"enableProfileApiAuthentication": False})
    assert response.json() == {
        "enableProfileApiAuthentication": False,
        "profileApiAllowedNetworks": [],
        "profileTokenRetrievable": False,
    }
    assert not ProfileApiSettings.for_client(demo).require_authentication
    latest = AuditEvent.objects.first()
    assert latest is not None
    assert latest.action == AuditEvent.Action.AUTH_DISABLED


def test_it_writes_no_audit_event_when_nothing_changes(client: HttpClient, alice: User) -> None:
    response = patch_settings(client, {"enableProfileApiAuthentication": False})
    assert response.json() == {
        "enableProfileApiAuthentication": False,
        "profileApiAllowedNetworks": [],
        "profileTokenRetrievable": False,
    }
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {},
            "Send at least one of enableProfileApiAuthentication, profileApiAllowedNetworks, profileTokenRetrievable.",
        ),
        (
            {"enableProfileApiAuthentication": None},
            "Send at least one of enableProfileApiAuthentication, profileApiAllowedNetworks, profileTokenRetrievable.",
        ),
        (
            {"enableProfileApiAuthentication": "true"},
            "enableProfileApiAuthentication: must be true or false.",
        ),
        (
            {"enableProfileApiAuthentication": 1},
            "enableProfileApiAuthentication: must be true or false.",
        ),
        (
            {"enableProfileApiAuthentication": True, "requireAuth": True},
            "Unknown field(s): requireAuth.",
        ),
    ],
)
def test_it_refuses_a_bad_settings_body_and_changes_nothing(
    client: HttpClient, alice: User, demo: Client, body: object, message: str
) -> None:
    error = assert_error(patch_settings(client, body), 400, "Parameter.Invalid")
    assert error["message"] == message
    assert not ProfileApiSettings.for_client(demo).require_authentication
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "The body is not valid JSON."),
        ("[" * 100_000, "The body is nested too deeply."),
        (
            '{"enableProfileApiAuthentication": ' + "1" * 5_000 + "}",
            "The body holds a number of more than 4,300 digits.",
        ),
        (b'{"enableProfileApiAuthentication": "\xff"}', "The body is not valid JSON."),
        ("[true]", "The body must be a JSON object."),
    ],
)
def test_it_refuses_a_body_that_is_not_a_json_object(
    client: HttpClient, alice: User, raw: str | bytes, message: str
) -> None:
    response = client.patch(
        SETTINGS_URL, raw, content_type="application/json", headers=basic("alice")
    )
    assert assert_error(response, 400, "Body.Invalid")["message"] == message


def test_it_refuses_a_body_too_large_to_read(
    client: HttpClient, alice: User, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    body = {"enableProfileApiAuthentication": True, "padding": "x" * 200}
    assert_error(patch_settings(client, body), 413, "Body.TooLarge")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_it_refuses_other_request_media_types_with_415(
    client: HttpClient, alice: User, demo: Client, content_type: str
) -> None:
    response = patch_settings(
        client, {"enableProfileApiAuthentication": True}, content_type=content_type
    )
    assert_error(response, 415, "MediaType.Unsupported")
    assert not ProfileApiSettings.for_client(demo).require_authentication


# Media types and the envelope


@pytest.mark.parametrize(
    ("accept", "answered"),
    [
        (None, VND),
        ("*/*", VND),
        (VND, VND),
        ("application/json", "application/json"),
        (f"application/json, {VND};q=0.5", "application/json"),
        ("text/html, application/json;q=0.9", "application/json"),
    ],
)
def test_it_answers_in_the_media_type_the_caller_accepts(
    client: HttpClient, alice: User, accept: str | None, answered: str
) -> None:
    headers = basic("alice") | ({"Accept": accept} if accept else {})
    for response in (
        client.get(SETTINGS_URL, headers=headers),
        client.post(ISSUE_URL, headers=headers),
        client.patch(
            SETTINGS_URL,
            json.dumps({"enableProfileApiAuthentication": True}),
            content_type=VND,
            headers=headers,
        ),
        client.get("/demo/target/authentication/token?authorizationScope=x", headers=headers),
    ):
        assert response.status_code in (200, 201)
        assert response["Content-Type"] == answered


def test_it_answers_errors_in_the_accepted_media_type(client: HttpClient, alice: User) -> None:
    response = client.get(TOKEN_URL, headers=basic("alice") | {"Accept": "application/json"})
    assert_error(response, 404, "Token.NotFound")
    assert response["Content-Type"] == "application/json"


def test_it_answers_406_when_the_caller_accepts_neither_json_type(
    client: HttpClient, alice: User
) -> None:
    response = client.post(ISSUE_URL, headers=basic("alice") | {"Accept": "text/html"})
    assert_error(response, 406, "MediaType.NotAcceptable")
    assert response["Content-Type"] == "application/json"
    assert not ProfileToken.objects.exists()


@pytest.mark.parametrize(
    ("method", "url", "allow"),
    [("delete", TOKEN_URL, "GET, POST"), ("put", SETTINGS_URL, "GET, PATCH")],
)
def test_it_answers_405_with_the_allowed_methods(
    client: HttpClient, alice: User, method: str, url: str, allow: str
) -> None:
    response = getattr(client, method)(url, headers=basic("alice"))
    assert_error(response, 405, "Method.NotAllowed")
    assert response["Allow"] == allow


def test_it_forbids_caches_to_keep_any_answer(client: HttpClient, alice: User) -> None:
    response = issue(client)
    assert "no-store" in response["Cache-Control"]


# Sessions and CSRF


def test_a_signed_in_approver_may_use_the_api_from_the_browser(
    client: HttpClient, alice: User
) -> None:
    client.force_login(alice)
    assert client.get(SETTINGS_URL).status_code == 200
    assert client.post(ISSUE_URL).status_code == 201


def test_a_signed_in_editor_is_forbidden(client: HttpClient, bob: User) -> None:
    client.force_login(bob)
    assert_error(client.get(SETTINGS_URL), 403, "Access.Denied")


def test_a_session_call_that_changes_something_needs_the_csrf_token(
    alice: User, demo: Client
) -> None:
    browser = HttpClient(enforce_csrf_checks=True)
    browser.force_login(alice)
    error = assert_error(browser.post(ISSUE_URL), 403, "Csrf.Failed")
    assert error["message"].startswith("CSRF verification failed: ")
    response = browser.patch(
        SETTINGS_URL,
        json.dumps({"enableProfileApiAuthentication": True}),
        content_type="application/json",
    )
    assert_error(response, 403, "Csrf.Failed")
    assert not ProfileToken.objects.exists()
    assert not ProfileApiSettings.for_client(demo).require_authentication


def test_a_session_call_with_the_csrf_token_goes_through(alice: User) -> None:
    browser = HttpClient(enforce_csrf_checks=True)
    browser.force_login(alice)
    secret = _get_new_csrf_string()
    browser.cookies["csrftoken"] = secret
    response = browser.post(ISSUE_URL, headers={"X-CSRFToken": secret})
    assert response.status_code == 201


def test_basic_callers_are_exempt_from_csrf(alice: User) -> None:
    script = HttpClient(enforce_csrf_checks=True)
    assert script.post(ISSUE_URL, headers=basic("alice")).status_code == 201


# Secrets


def test_the_plaintext_token_is_never_stored_or_logged(
    client: HttpClient, alice: User, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        plaintext = issue(client).json()["accessToken"]
        client.get(TOKEN_URL, headers=basic("alice"))
    assert plaintext not in caplog.text
    dump = StringIO()
    call_command("dumpdata", stdout=dump)
    assert plaintext not in dump.getvalue()
    assert secret.digest(plaintext) in dump.getvalue()


# End to end: the API's token on the profile APIs


def test_a_token_made_through_the_api_opens_the_profile_apis_and_its_predecessor_stops(
    client: HttpClient, alice: User, demo: Client
) -> None:
    a_profile(demo, city="Paris")
    fetch = f"/rest/v1/profiles/{PC_ID}?client=demo"
    patch_settings(client, {"enableProfileApiAuthentication": True})
    assert client.get(fetch).status_code == 401

    first = issue(client).json()["accessToken"]
    response = client.get(fetch, headers={"Authorization": f"Bearer {first}"})
    assert response.status_code == 200
    assert response.json()["profileAttributes"]["city"]["value"] == "Paris"

    second = issue(client).json()["accessToken"]
    refused = client.get(fetch, headers={"Authorization": f"Bearer {first}"})
    assert refused.status_code == 401
    assert "invalid" in refused["WWW-Authenticate"]
    assert client.get(fetch, headers={"Authorization": f"Bearer {second}"}).status_code == 200


class _StalledBody(io.RawIOBase):
    """A request body whose next read waits past the server's body timeout."""

    def readinto(self, buffer: Any) -> int:
        raise TimeoutError("timed out")


def test_it_answers_a_body_that_stops_arriving_408_and_changes_nothing(
    alice: User, demo: Client
) -> None:
    request = RequestFactory().patch(
        SETTINGS_URL,
        data=b'{"enableProfileApiAuthentication": true}',
        content_type="application/json",
        headers=basic("alice"),
    )
    request._stream = _StalledBody()  # type: ignore[attr-defined]
    response = client_settings(request, client_code="demo")
    assert response.status_code == 408
    (error,) = json.loads(response.content)["errors"]
    assert error["errorCode"] == "request_timeout"
    assert "too slowly" in error["message"]
    assert not ProfileApiSettings.for_client(demo).require_authentication
