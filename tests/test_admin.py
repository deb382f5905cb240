"""The operators' Django admin: clients with settings, memberships, read-only records."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client as HttpClient

from profiles.access.actors import SYSTEM
from profiles.models import AuditEvent, Client, Membership, ProfileApiSettings, ProfileToken, Role


@pytest.fixture
def operator(root: User) -> HttpClient:
    http = HttpClient(REMOTE_ADDR="198.51.100.4")
    http.force_login(root)
    return http


@pytest.fixture
def token(demo: Client) -> ProfileToken:
    issued, _ = ProfileToken.objects.issue(demo, expires_in_days=30, actor=SYSTEM)
    return issued


def test_it_lists_clients_and_shows_their_settings(operator: HttpClient, demo: Client) -> None:
    ProfileApiSettings.for_client(demo).set_require_authentication(True, actor=SYSTEM)

    assert "demo" in operator.get("/admin/profiles/client/").content.decode()
    html = operator.get(f"/admin/profiles/client/{demo.pk}/change/").content.decode()
    assert "Require authentication" in html


def test_it_creates_a_client_and_audits_it(operator: HttpClient) -> None:
    response = operator.post(
        "/admin/profiles/client/add/",
        {
            "code": "acme",
            "name": "Acme",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "profile_api_settings-TOTAL_FORMS": "0",
            "profile_api_settings-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302
    client = Client.objects.get(code="acme")
    event = AuditEvent.objects.get(client=client)
    assert (event.action, event.actor_label, event.remote_addr) == (
        AuditEvent.Action.CLIENT_CREATED,
        "root",
        "198.51.100.4",
    )


def test_it_refuses_a_client_code_outside_the_rules(operator: HttpClient) -> None:
    response = operator.post(
        "/admin/profiles/client/add/",
        {
            "code": "Bad Code",
            "name": "Bad",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "profile_api_settings-TOTAL_FORMS": "0",
            "profile_api_settings-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 200
    assert not Client.objects.filter(name="Bad").exists()


def test_it_grants_a_role_and_audits_it(operator: HttpClient, demo: Client) -> None:
    dave = User.objects.create_user("dave")

    response = operator.post(
        "/admin/profiles/membership/add/",
        {"user": dave.pk, "client": demo.pk, "role": Role.APPROVER},
    )

    assert response.status_code == 302
    assert Membership.objects.get(user=dave).role == Role.APPROVER
    event = AuditEvent.objects.get(client=demo)
    assert (event.action, event.detail) == (AuditEvent.Action.ROLE_GRANTED, "dave is Approver")


def test_it_grants_a_role_from_the_clients_page_and_audits_it(
    operator: HttpClient, demo: Client
) -> None:
    dave = User.objects.create_user("dave")
    ProfileApiSettings.for_client(demo)

    response = operator.post(
        f"/admin/profiles/client/{demo.pk}/change/",
        {
            "name": "Demo",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-0-user": dave.pk,
            "memberships-0-role": Role.PUBLISHER,
            "profile_api_settings-TOTAL_FORMS": "1",
            "profile_api_settings-INITIAL_FORMS": "1",
            "profile_api_settings-0-client": demo.pk,
        },
    )

    assert response.status_code == 302
    assert Membership.objects.get(user=dave, client=demo).role == Role.PUBLISHER
    event = AuditEvent.objects.get(client=demo)
    assert (event.action, event.detail) == (AuditEvent.Action.ROLE_GRANTED, "dave is Publisher")


def test_it_shows_token_metadata_read_only(operator: HttpClient, token: ProfileToken) -> None:
    listing = operator.get("/admin/profiles/profiletoken/").content.decode()
    assert token.masked in listing
    html = operator.get(f"/admin/profiles/profiletoken/{token.pk}/change/").content.decode()
    assert token.masked in html
    assert token.digest not in html
    assert 'name="digest"' not in html
    assert 'name="_save"' not in html


@pytest.mark.parametrize(
    "query",
    [
        "digest__startswith={first}",
        "digest={digest}",
        "digest__regex=^{first}",
        "ciphertext__startswith=g",
        "ciphertext__isnull=False",
    ],
)
def test_it_refuses_to_filter_tokens_by_their_digest_or_encrypted_copy(
    operator: HttpClient, token: ProfileToken, query: str
) -> None:
    # Answered, the count of matching tokens would tell either value one character at a time.
    query = query.format(first=token.digest[0], digest=token.digest)

    response = operator.get(f"/admin/profiles/profiletoken/?{query}")

    assert response.status_code == 400
    assert token.masked not in response.content.decode()


def test_it_refuses_to_reach_a_tokens_digest_from_another_records_list(
    operator: HttpClient, token: ProfileToken
) -> None:
    response = operator.get(f"/admin/profiles/tokenreminder/?token__digest={token.digest}")

    assert response.status_code == 400


def test_it_offers_no_way_to_add_change_or_delete_a_token(
    operator: HttpClient, token: ProfileToken
) -> None:
    later = token.expires_at + timedelta(days=365)

    assert operator.get("/admin/profiles/profiletoken/add/").status_code == 403
    operator.post(
        f"/admin/profiles/profiletoken/{token.pk}/change/",
        {"expires_at_0": f"{later:%Y-%m-%d}", "expires_at_1": "00:00:00"},
    )
    assert operator.post(f"/admin/profiles/profiletoken/{token.pk}/delete/").status_code == 403

    token_after = ProfileToken.objects.get(pk=token.pk)
    assert token_after.expires_at == token.expires_at
    assert token_after.revoked_at is None


def test_it_shows_audit_events_read_only(operator: HttpClient, token: ProfileToken) -> None:
    event = AuditEvent.objects.get()

    assert "Token generated" in operator.get("/admin/profiles/auditevent/").content.decode()
    assert operator.get("/admin/profiles/auditevent/add/").status_code == 403
    html = operator.get(f"/admin/profiles/auditevent/{event.pk}/change/").content.decode()
    assert 'name="_save"' not in html
    assert operator.post(f"/admin/profiles/auditevent/{event.pk}/delete/").status_code == 403
    assert AuditEvent.objects.count() == 1


def test_it_keeps_the_admin_from_people_who_are_not_staff(alice: User) -> None:
    http = HttpClient()
    http.force_login(alice)

    assert http.get("/admin/profiles/profiletoken/").status_code == 302
