"""Signing in through a real OpenID Connect provider (docs/operations.md#single-sign-on):
dana is in the provider's group for Approvers of demo, erin in the one for Editors."""

from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from django.test import Client as HttpClient
from django.urls import reverse

from bench.loopback import free_port
from profiles.access.provider_roles import roles_from_claims
from profiles.models import AuditEvent, Client, Membership, ProfileApiSettings, Role
from tests.provider import (
    APPROVERS,
    CLIENT_ID,
    EDITORS,
    IdentityProvider,
    come_back,
    sign_in,
    start,
)
from tests.support import PASSWORD, manage, member, settings_path


@pytest.fixture
def http() -> HttpClient:
    return HttpClient()


def test_it_shows_the_providers_button_on_the_sign_in_page(
    single_sign_on: IdentityProvider, http: HttpClient, db: None
) -> None:
    page = http.get(reverse("login")).content.decode()
    assert "Sign in with Test provider" in page
    assert 'name="password"' in page


def test_it_offers_no_button_and_no_provider_pages_without_a_provider(
    http: HttpClient, db: None
) -> None:
    assert "Sign in with" not in http.get(reverse("login")).content.decode()
    assert http.get(reverse("oidc_authentication_init")).status_code == 404
    assert http.get(reverse("oidc_authentication_callback")).status_code == 404


def test_it_sends_the_browser_to_the_provider_with_pkce_state_and_nonce(
    single_sign_on: IdentityProvider, http: HttpClient, db: None
) -> None:
    query = parse_qs(urlsplit(start(http)).query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) >= 43
    assert query["state"][0]
    assert query["nonce"][0]


def test_it_signs_in_a_new_person_as_their_groups_say(
    single_sign_on: IdentityProvider, http: HttpClient, demo: Client
) -> None:
    single_sign_on.person("dana", APPROVERS, "another-application:admins")
    response = sign_in(http, single_sign_on, "dana")
    assert response.status_code == 302
    dana = User.objects.get(username="dana")
    assert not dana.has_usable_password()
    assert Membership.objects.get(user=dana, client=demo).role == Role.APPROVER
    event = AuditEvent.objects.get(client=demo, action=AuditEvent.Action.ROLE_GRANTED)
    assert event.actor_label == "single sign-on"
    assert "dana is Approver" in event.detail
    assert http.get(settings_path(demo)).status_code == 200


def test_an_editor_from_the_providers_groups_cannot_generate_a_token(
    single_sign_on: IdentityProvider, http: HttpClient, demo: Client
) -> None:
    ProfileApiSettings.objects.create(client=demo, require_authentication=True)
    single_sign_on.person("erin", EDITORS)
    sign_in(http, single_sign_on, "erin")
    response = http.post(settings_path(demo), {"expires_in_days": "90", "generate": "1"})
    assert response.status_code == 403
    assert not demo.tokens.exists()


def test_a_group_removed_at_the_provider_removes_the_role_at_the_next_sign_in(
    single_sign_on: IdentityProvider, http: HttpClient, demo: Client, other_client: Client
) -> None:
    single_sign_on.person("dana", APPROVERS, "targetadmin:acme:observer")
    sign_in(http, single_sign_on, "dana")
    single_sign_on.person("dana", EDITORS)
    sign_in(HttpClient(), single_sign_on, "dana")
    dana = User.objects.get(username="dana")
    assert list(Membership.objects.filter(user=dana).values_list("client__code", "role")) == [
        ("demo", Role.EDITOR)
    ]
    removed = AuditEvent.objects.get(action=AuditEvent.Action.ROLE_REMOVED)
    assert removed.client == other_client
    assert "dana is no longer a member" in removed.detail
    assert http.get(settings_path(demo)).status_code == 403


def test_the_operator_group_opens_the_django_admin_until_it_is_taken_away(
    single_sign_on: IdentityProvider, db: None, caplog: pytest.LogCaptureFixture
) -> None:
    single_sign_on.person("olga", "targetadmin:operator")
    http = HttpClient()
    with caplog.at_level(logging.WARNING, logger="targetadmin.sign_in"):
        sign_in(http, single_sign_on, "olga")
    assert http.get(reverse("admin:index")).status_code == 200
    assert any("granted to olga" in record.getMessage() for record in caplog.records)
    single_sign_on.person("olga")
    http = HttpClient()
    sign_in(http, single_sign_on, "olga")
    olga = User.objects.get(username="olga")
    assert not olga.is_staff
    assert not olga.is_superuser
    assert http.get(reverse("admin:index")).status_code == 302


def test_the_admins_sign_in_page_offers_the_provider(
    single_sign_on: IdentityProvider, http: HttpClient, db: None
) -> None:
    page = http.get(reverse("admin:login"), {"next": "/admin/"}).content.decode()
    assert "Sign in with Test provider" in page
    assert "/oidc/authenticate/?next=/admin/" in page
    assert 'name="password"' in page


def test_the_highest_of_several_groups_applies_and_unknown_clients_are_ignored(
    single_sign_on: IdentityProvider, http: HttpClient, demo: Client
) -> None:
    single_sign_on.person(
        "dana", EDITORS, "targetadmin:demo:publisher", "targetadmin:nope:approver"
    )
    sign_in(http, single_sign_on, "dana")
    memberships = Membership.objects.filter(user__username="dana")
    assert list(memberships.values_list("client__code", "role")) == [("demo", Role.PUBLISHER)]


def test_a_local_account_of_the_same_name_is_not_taken_over(
    single_sign_on: IdentityProvider, http: HttpClient, demo: Client
) -> None:
    member(demo, "dana", Role.OBSERVER)
    single_sign_on.person("dana", APPROVERS)
    response = sign_in(http, single_sign_on, "dana")
    assert response.status_code == 403
    assert "already exists here" in response.content.decode()
    assert Membership.objects.get(user__username="dana").role == Role.OBSERVER


def test_signing_out_ends_the_local_session_and_the_providers(
    single_sign_on: IdentityProvider, http: HttpClient, demo: Client
) -> None:
    single_sign_on.person("dana", APPROVERS)
    sign_in(http, single_sign_on, "dana")
    response = http.post(reverse("logout"))
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        f"{single_sign_on.issuer}/logout/"
    )
    query = parse_qs(location.query)
    assert query["post_logout_redirect_uri"] == ["http://testserver/accounts/login/"]
    assert query["id_token_hint"][0].count(".") == 2
    assert http.get(settings_path(demo)).status_code == 302  # signed out here


def test_a_password_sign_out_goes_back_to_the_sign_in_page(
    single_sign_on: IdentityProvider, alice: User
) -> None:
    http = HttpClient()
    http.force_login(alice)
    assert http.post(reverse("logout"))["Location"] == "/accounts/login/"


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("expired_id_token", "it has expired"),
        ("wrong_audience", "issued for another application"),
        ("tampered_id_token", "signature does not match"),
        ("replayed_nonce", "nonce is not the one this sign-in sent"),
    ],
)
def test_a_bad_id_token_is_refused_with_a_page_and_an_audit_line(
    single_sign_on: IdentityProvider,
    http: HttpClient,
    demo: Client,
    caplog: pytest.LogCaptureFixture,
    fault: str,
    reason: str,
) -> None:
    single_sign_on.person("dana", APPROVERS)
    sign_in(HttpClient(), single_sign_on, "dana")  # an earlier sign-in, whose nonce is kept
    User.objects.filter(username="dana").delete()
    single_sign_on.fault(fault)
    with caplog.at_level(logging.WARNING, logger="targetadmin.sign_in"):
        response = sign_in(http, single_sign_on, "dana")
    assert response.status_code == 403
    page = response.content.decode()
    assert "Sign-in refused" in page
    assert reason in page
    assert any(reason in record.getMessage() for record in caplog.records)
    assert not User.objects.filter(username="dana").exists()
    assert http.get(settings_path(demo)).status_code == 302


def test_a_replayed_state_is_refused(
    single_sign_on: IdentityProvider, http: HttpClient, demo: Client
) -> None:
    single_sign_on.person("dana", APPROVERS)
    callback = single_sign_on.sign_in(start(http), "dana")
    come_back(http, callback)
    http.post(reverse("logout"))
    again = come_back(http, callback)
    assert again.status_code == 403
    assert "Sign-in refused" in again.content.decode()
    assert http.get(settings_path(demo)).status_code == 302


def test_a_replayed_code_is_refused_by_the_provider(
    single_sign_on: IdentityProvider, http: HttpClient, demo: Client
) -> None:
    single_sign_on.person("dana", APPROVERS)
    used = urlsplit(single_sign_on.sign_in(start(http), "dana"))
    come_back(http, f"{used.path}?{used.query}")
    http.post(reverse("logout"))
    fresh_state = parse_qs(urlsplit(start(http)).query)["state"][0]
    used_code = parse_qs(used.query)["code"][0]
    response = http.get(used.path, {"code": used_code, "state": fresh_state})
    assert response.status_code == 403
    assert "refused to complete the sign-in" in response.content.decode()
    assert http.get(settings_path(demo)).status_code == 302


def test_a_state_from_another_sign_in_is_refused(
    single_sign_on: IdentityProvider, demo: Client
) -> None:
    single_sign_on.person("dana", APPROVERS)
    mallory, victim = HttpClient(), HttpClient()
    start(victim)
    callback = single_sign_on.sign_in(start(mallory), "dana")
    response = come_back(victim, callback)
    assert response.status_code == 403
    assert victim.get(settings_path(demo)).status_code == 302


def test_an_error_from_the_provider_is_a_clear_page(
    single_sign_on: IdentityProvider, http: HttpClient, db: None
) -> None:
    query = parse_qs(urlsplit(start(http)).query)
    response = http.get(
        reverse("oidc_authentication_callback"),
        {"error": "access_denied", "state": query["state"][0]},
    )
    assert response.status_code == 403
    assert "did not sign you in (access_denied)" in response.content.decode()


def test_the_provider_being_down_gives_a_clear_page(
    single_sign_on: IdentityProvider, http: HttpClient, settings: Any, db: None
) -> None:
    settings.OIDC_ISSUER = f"http://127.0.0.1:{free_port()}/o"
    response = http.get(reverse("oidc_authentication_init"))
    assert response.status_code == 503
    assert "The identity provider cannot be reached" in response.content.decode()
    assert http.get(reverse("login")).status_code == 200


def test_the_provider_being_down_on_the_way_back_gives_a_clear_page(
    single_sign_on: IdentityProvider, http: HttpClient, settings: Any, demo: Client
) -> None:
    single_sign_on.person("dana", APPROVERS)
    callback = single_sign_on.sign_in(start(http), "dana")
    settings.OIDC_ISSUER = f"http://127.0.0.1:{free_port()}/o"
    response = come_back(http, callback)
    assert response.status_code == 503
    assert "did not answer" in response.content.decode()
    assert http.get(settings_path(demo)).status_code == 302


def test_a_deactivated_person_is_signed_out(
    single_sign_on: IdentityProvider, http: HttpClient, demo: Client
) -> None:
    single_sign_on.person("dana", APPROVERS)
    sign_in(http, single_sign_on, "dana")
    User.objects.filter(username="dana").update(is_active=False)
    assert http.get(settings_path(demo)).status_code == 302


def test_passwords_still_work_beside_single_sign_on(
    single_sign_on: IdentityProvider, http: HttpClient, alice: User
) -> None:
    response = http.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302


ISSUER = {"OIDC_ISSUER": "https://idp.example.com/realms/example"}
CLIENT = {"OIDC_CLIENT_ID": "targetadmin", "OIDC_CLIENT_SECRET": "secret"}


def test_sign_out_may_go_on_to_the_issuers_origin() -> None:
    show = "from django.conf import settings; print(settings.SECURE_CSP['form-action'])"
    done = manage(os.environ | ISSUER | CLIENT, "shell", "-c", show, check=True)
    assert "'https://idp.example.com'" in done.stdout


def test_an_issuer_needs_the_client_id_and_secret() -> None:
    done = manage(os.environ | ISSUER, "check")
    assert done.returncode != 0
    assert "OIDC_ISSUER needs OIDC_CLIENT_ID and OIDC_CLIENT_SECRET" in done.stderr


def test_the_groups_claim_may_be_nested_and_name_roles_in_any_case(settings: Any) -> None:
    settings.OIDC_GROUPS_CLAIM = "realm_access.roles"
    claims = {"realm_access": {"roles": ["targetadmin:demo:APPROVER", "offline_access", 7]}}
    assert roles_from_claims(claims) == {"demo": Role.APPROVER}


def test_a_single_group_as_a_string_counts_and_malformed_names_do_not(settings: Any) -> None:
    settings.OIDC_GROUP_PREFIX = "ta/"
    assert roles_from_claims({"groups": "ta/demo:editor"}) == {"demo": Role.EDITOR}
    for group in (
        "ta/demo:owner",
        "ta/Demo:editor",
        "ta/:editor",
        "ta/demo",
        "targetadmin:demo:editor",
    ):
        assert roles_from_claims({"groups": [group]}) == {}, group
    assert roles_from_claims({}) == {}
