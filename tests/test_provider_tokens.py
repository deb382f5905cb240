"""The management API with the identity provider's access tokens
(docs/management-api.md#provider-access-tokens): scripts get them by the client-credentials
flow from the real test provider; the "reporting" script's application acts with the
provider's group for Approvers of demo, "dashboard" with the one for Editors."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import Client as HttpClient
from jwcrypto import jwk

from bench.loopback import free_port
from profiles.models import AuditEvent, Client, ProfileToken
from tests.provider import API_AUDIENCE, APPROVERS, EDITORS, IdentityProvider, bearer
from tests.support import basic
from tests.test_management_api import ISSUE_URL, SETTINGS_URL, assert_error


def signed(provider: IdentityProvider, key_pem: bytes | None = None, **changes: Any) -> str:
    """A token as the provider signs them (with its key unless ``key_pem``), for an
    Approver of demo, with ``changes`` to its claims."""
    now = int(time.time())
    claims = {
        "iss": provider.issuer,
        "aud": API_AUDIENCE,
        "sub": "7",
        "preferred_username": "nightly",
        "groups": [APPROVERS],
        "iat": now,
        "exp": now + 600,
        **changes,
    }
    kid = jwk.JWK.from_pem(provider.signing_key).thumbprint()
    return jwt.encode(
        claims, key_pem or provider.signing_key, algorithm="RS256", headers={"kid": kid}
    )


def another_key() -> bytes:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture
def http() -> HttpClient:
    return HttpClient()


def test_an_approver_groups_access_token_regenerates_the_token(
    single_sign_on: IdentityProvider, http: HttpClient, demo: Client
) -> None:
    token = single_sign_on.script_token("reporting", APPROVERS)
    first = http.post(ISSUE_URL, headers=bearer(token))
    second = http.post(ISSUE_URL, headers=bearer(token))
    assert first.status_code == second.status_code == 201
    assert second.json()["accessToken"].startswith("tpa_")
    assert (
        ProfileToken.objects.active().get(client=demo).last_four
        == (second.json()["accessToken"][-4:])
    )
    event = AuditEvent.objects.filter(action=AuditEvent.Action.TOKEN_REGENERATED).get()
    assert event.actor_label == "reporting-owner (access token)"
    assert event.actor is None


def test_an_editor_groups_access_token_gets_403(
    single_sign_on: IdentityProvider, http: HttpClient, demo: Client
) -> None:
    token = single_sign_on.script_token("dashboard", EDITORS)
    assert_error(http.post(ISSUE_URL, headers=bearer(token)), 403, "Access.Denied")
    assert not ProfileToken.objects.exists()


def test_an_approver_of_another_client_gets_403(
    single_sign_on: IdentityProvider, http: HttpClient, demo: Client, other_client: Client
) -> None:
    token = single_sign_on.script_token("acme-reporting", "targetadmin:acme:approver")
    assert_error(http.get(SETTINGS_URL, headers=bearer(token)), 403, "Access.Denied")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "it has expired"),
        ({"aud": "targetadmin"}, "issued for another application"),
        ({"iss": "https://elsewhere.example"}, "another issuer signed it"),
    ],
    ids=["expired", "wrong-audience", "wrong-issuer"],
)
def test_a_token_not_valid_here_is_refused(
    single_sign_on: IdentityProvider,
    http: HttpClient,
    demo: Client,
    changes: dict[str, Any],
    reason: str,
) -> None:
    response = http.get(SETTINGS_URL, headers=bearer(signed(single_sign_on, **changes)))
    error = assert_error(response, 401, "Authentication.Failed")
    assert reason in error["message"]
    assert response["WWW-Authenticate"] == 'Bearer realm="targetadmin", error="invalid_token"'


def test_a_token_signed_with_another_key_is_refused(
    single_sign_on: IdentityProvider, http: HttpClient, demo: Client
) -> None:
    forged = signed(single_sign_on, key_pem=another_key())
    error = assert_error(
        http.get(SETTINGS_URL, headers=bearer(forged)), 401, "Authentication.Failed"
    )
    assert "signature" in error["message"]


def test_a_token_the_provider_signed_is_accepted(
    single_sign_on: IdentityProvider, http: HttpClient, demo: Client
) -> None:
    assert http.get(SETTINGS_URL, headers=bearer(signed(single_sign_on))).status_code == 200


def test_a_profile_token_is_refused(
    single_sign_on: IdentityProvider, http: HttpClient, demo: Client, alice: Any
) -> None:
    profile_token = http.post(ISSUE_URL, headers=basic("alice")).json()["accessToken"]
    error = assert_error(
        http.get(SETTINGS_URL, headers=bearer(profile_token)), 401, "Authentication.Unsupported"
    )
    assert "profile token" in error["message"]


def test_a_malformed_token_is_refused(
    single_sign_on: IdentityProvider, http: HttpClient, demo: Client
) -> None:
    response = http.get(SETTINGS_URL, headers=bearer("not-a-jwt"))
    assert_error(response, 401, "Authentication.Failed")


def test_the_provider_being_down_is_a_503(
    single_sign_on: IdentityProvider, http: HttpClient, demo: Client, settings: Any
) -> None:
    token = signed(single_sign_on)
    settings.OIDC_ISSUER = f"http://127.0.0.1:{free_port()}/o"
    response = http.get(SETTINGS_URL, headers=bearer(token))
    assert_error(response, 503, "provider_unavailable")


def test_repeated_bad_tokens_from_one_address_are_throttled(
    single_sign_on: IdentityProvider, http: HttpClient, demo: Client, settings: Any
) -> None:
    settings.MANAGEMENT_API_BASIC_FAILURE_LIMIT = 2
    expired = signed(single_sign_on, exp=int(time.time()) - 3600, iat=int(time.time()) - 7200)
    for _ in range(3):
        http.get(SETTINGS_URL, headers=bearer(expired))
    response = http.get(SETTINGS_URL, headers=bearer(signed(single_sign_on)))
    assert_error(response, 429, "Authentication.LockedOut")
