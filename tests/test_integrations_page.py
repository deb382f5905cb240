"""Setup, Integration tokens: the page (docs/screen.md#integration-tokens): an Approver adds,
re-generates and revokes; an Editor or a Publisher sees; the secret shows once."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client as HttpClient
from django.urls import reverse

from profiles.models import AuditEvent, Client, Integration, ProfileToken
from profiles.tokens import secret
from tests.fixtures import ALICES_ADDRESS
from tests.integration_tokens import add_integration
from tests.support import signed_in

TOKEN_PATTERN = re.compile(r"tpa_[0-9A-Za-z]{49}")


def page(client: Client) -> str:
    return reverse("integrations", kwargs={"client_code": client.code})


def add(http: HttpClient, client: Client, **fields: object) -> object:
    data = {"name": "CRM sync", "expires_in_days": 90, "permissions": ["fetch"], "add": "1"}
    return http.post(page(client), {**data, **fields})


def test_an_approver_adds_a_token_and_sees_it_once(
    alice_signed_in: HttpClient, demo: Client, alice: User
) -> None:
    response = add(alice_signed_in, demo, permissions=["fetch", "batch"])

    assert response.status_code == 200  # type: ignore[attr-defined]
    shown = TOKEN_PATTERN.findall(response.content.decode())  # type: ignore[attr-defined]
    assert len(set(shown)) == 1
    integration = Integration.objects.get(client=demo)
    assert integration.permission_names == ["fetch", "batch"]
    assert ProfileToken.objects.get(integration=integration).digest == secret.digest(shown[0])
    event = AuditEvent.objects.get(client=demo)
    assert (event.action, event.actor, event.remote_addr) == (
        AuditEvent.Action.INTEGRATION_ADDED,
        alice,
        ALICES_ADDRESS,
    )

    again = alice_signed_in.get(page(demo)).content.decode()
    assert shown[0] not in again
    assert f"tpa_…{shown[0][-4:]}" in again
    assert "CRM sync" in again


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"name": ""}, "This field is required."),
        ({"permissions": []}, "Choose at least one permission."),
        ({"permissions": ["delete"]}, "Select a valid choice."),
        ({"expires_in_days": 2}, "Select a valid choice."),
    ],
)
def test_a_bad_addition_is_shown_again_with_its_problem(
    alice_signed_in: HttpClient, demo: Client, fields: dict[str, object], problem: str
) -> None:
    response = add(alice_signed_in, demo, **fields)

    assert response.status_code == 400  # type: ignore[attr-defined]
    assert problem in response.content.decode()  # type: ignore[attr-defined]
    assert not Integration.objects.exists()


def test_a_name_taken_is_refused_on_the_page(alice_signed_in: HttpClient, demo: Client) -> None:
    add_integration(demo, name="CRM sync")

    response = add(alice_signed_in, demo)

    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "already has an integration token named" in response.content.decode()  # type: ignore[attr-defined]


def test_the_add_form_goes_once_the_client_has_twenty(
    alice_signed_in: HttpClient, demo: Client
) -> None:
    for number in range(20):
        add_integration(demo, name=f"integration {number}")

    html = alice_signed_in.get(page(demo)).content.decode()

    assert 'name="add"' not in html
    assert "the most it may have" in html


@pytest.mark.parametrize("username", ["bob", "peggy"])
def test_an_editor_or_publisher_sees_the_tokens_but_no_way_to_change_them(
    demo: Client, bob: User, peggy: User, username: str
) -> None:
    _, plaintext = add_integration(demo, "fetch", name="CRM sync")
    http = signed_in(bob if username == "bob" else peggy)

    html = http.get(page(demo)).content.decode()

    assert "CRM sync" in html
    assert f"tpa_…{plaintext[-4:]}" in html
    assert plaintext not in html
    assert 'name="add"' not in html
    assert 'name="revoke"' not in html
    assert "Only Approvers can add, re-generate or revoke integration tokens." in html


@pytest.mark.parametrize("action", ["add", "regenerate", "revoke"])
def test_an_editor_cannot_change_them_even_by_posting(demo: Client, bob: User, action: str) -> None:
    integration, _ = add_integration(demo)
    data = {
        "name": "new",
        "expires_in_days": 90,
        "permissions": ["fetch"],
        "integration": integration.pk,
        action: "confirmed",
    }

    response = signed_in(bob).post(page(demo), data)

    assert response.status_code == 403
    assert "Only Approvers can manage integration tokens." in response.content.decode()
    assert Integration.objects.filter(client=demo).count() == 1
    assert ProfileToken.objects.filter(integration=integration, revoked_at=None).count() == 1


def test_an_observer_gets_403_and_a_stranger_404(demo: Client, oscar: User, charlie: User) -> None:
    assert signed_in(oscar).get(page(demo)).status_code == 403
    assert signed_in(charlie).get(page(demo)).status_code == 404


def test_revoking_asks_first_then_revokes_that_token_only(
    alice_signed_in: HttpClient, demo: Client
) -> None:
    crm, _ = add_integration(demo, name="CRM sync")
    web, _ = add_integration(demo, name="web tier")

    asked = alice_signed_in.post(page(demo), {"integration": crm.pk, "revoke": "ask"})
    assert "Revoke the integration token “CRM sync”?" in asked.content.decode()
    assert Integration.objects.get(pk=crm.pk).revoked_at is None

    done = alice_signed_in.post(page(demo), {"integration": crm.pk, "revoke": "confirmed"})

    assert done.status_code == 302
    assert Integration.objects.get(pk=crm.pk).revoked_at is not None
    assert Integration.objects.get(pk=web.pk).revoked_at is None
    listed = alice_signed_in.get(page(demo)).content.decode()
    assert '<th scope="row">CRM sync</th>' not in listed
    assert '<th scope="row">web tier</th>' in listed


def test_regenerating_asks_with_the_grace_choices_then_shows_the_new_token_once(
    alice_signed_in: HttpClient, demo: Client
) -> None:
    crm, first = add_integration(demo)

    asked = alice_signed_in.post(page(demo), {"integration": crm.pk, "regenerate": "ask"})
    asked_html = asked.content.decode()
    assert "Re-generate the integration token “CRM sync”?" in asked_html
    assert "In 24 hours" in asked_html

    done = alice_signed_in.post(
        page(demo),
        {
            "integration": crm.pk,
            "expires_in_days": 30,
            "previous_token_grace": 3600,
            "regenerate": "confirmed",
        },
    )

    shown = set(TOKEN_PATTERN.findall(done.content.decode()))
    assert len(shown) == 1
    assert first not in shown
    old = ProfileToken.objects.get(digest=secret.digest(first))
    assert old.grace_until is not None
    assert old.revoked_at is None


def test_a_stale_page_changes_nothing(
    alice_signed_in: HttpClient, demo: Client, other_client: Client
) -> None:
    theirs, _ = add_integration(other_client)

    for action in ("regenerate", "revoke"):
        response = alice_signed_in.post(page(demo), {"integration": theirs.pk, action: "confirmed"})
        assert response.status_code == 302

    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert ProfileToken.objects.filter(integration=theirs).count() == 1


def test_the_settings_card_links_to_the_page(alice_signed_in: HttpClient, demo: Client) -> None:
    html = alice_signed_in.get(reverse("implementation", args=[demo.code])).content.decode()

    assert f'href="{page(demo)}"' in html
