"""A token's usage in the management API: ``GET …/authentication/token/usage`` and
``GET …/authentication/tokens/<id>/usage`` (docs/management-api.md#token-usage)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client as HttpClient

from profiles.models import Client, Integration, TokenUsage
from profiles.tokens import usage
from profiles.tokens.permissions import Permission
from tests.support import basic
from tests.test_management_api import assert_error

OWN_URL = "/demo/target/authentication/token/usage"
NO_REFUSALS = {"expired": 0, "revoked": 0, "scope": 0, "network": 0}


def get(url: str, username: str = "alice") -> Any:
    return HttpClient().get(url, headers=basic(username))


def integration_url(integration: Integration, code: str = "demo") -> str:
    return f"/{code}/target/authentication/tokens/{integration.pk}/usage"


def an_integration(client: Client, name: str = "CRM sync") -> Integration:
    return Integration.objects.create(client=client, name=name, permissions=Permission.FETCH)


def counted(client: Client, integration: Integration | None, days_ago: int, **counts: int) -> None:
    TokenUsage.objects.create(
        client=client,
        integration=integration,
        day=usage.today() - timedelta(days=days_ago),
        **counts,
    )


def test_it_answers_the_clients_own_tokens_last_30_days_oldest_first(alice: User) -> None:
    demo = Client.objects.get(code="demo")
    counted(demo, None, 0, accepted=12, refused_scope=3, fetch_calls=15)
    counted(demo, None, 29, refused_expired=2)
    counted(demo, None, 30, accepted=99)  # a day before the window

    response = get(OWN_URL)

    assert response.status_code == 200
    days = response.json()["days"]
    assert set(response.json()) == {"days"}
    assert len(days) == 30
    assert days[0] == {
        "date": (usage.today() - timedelta(days=29)).isoformat(),
        "accepted": 0,
        "refused": NO_REFUSALS | {"expired": 2},
    }
    assert days[-1] == {
        "date": usage.today().isoformat(),
        "accepted": 12,
        "refused": NO_REFUSALS | {"scope": 3},
    }
    assert sum(day["accepted"] for day in days) == 12


def test_it_answers_as_many_days_as_asked_up_to_the_90_kept(alice: User) -> None:
    assert len(get(f"{OWN_URL}?days=7").json()["days"]) == 7
    assert len(get(f"{OWN_URL}?days=90").json()["days"]) == 90


@pytest.mark.parametrize("days", ["0", "91", "-1", "seven", "1.5"])
def test_it_refuses_a_number_of_days_outside_1_to_90(alice: User, days: str) -> None:
    error = assert_error(get(f"{OWN_URL}?days={days}"), 400, "Parameter.Invalid")

    assert error["message"] == "days: must be a whole number of days from 1 to 90."


def test_an_integrations_usage_is_its_own_not_the_clients_tokens(alice: User) -> None:
    demo = Client.objects.get(code="demo")
    crm = an_integration(demo)
    web = an_integration(demo, "web tier")
    counted(demo, crm, 1, accepted=5)
    counted(demo, web, 1, accepted=7)
    counted(demo, None, 1, accepted=11)

    days = get(integration_url(crm)).json()["days"]

    assert [day["accepted"] for day in days if day["accepted"]] == [5]


def test_no_client_reaches_another_clients_token_or_its_counts(
    alice: User, charlie: User, other_client: Client
) -> None:
    theirs = an_integration(other_client)
    counted(other_client, theirs, 0, accepted=5)
    counted(other_client, None, 0, accepted=6)

    assert_error(get(integration_url(theirs)), 404, "Token.NotFound")
    assert_error(get(integration_url(theirs, "demo"), "charlie"), 403, "Access.Denied")
    assert_error(get(OWN_URL, "charlie"), 403, "Access.Denied")
    assert sum(day["accepted"] for day in get(OWN_URL).json()["days"]) == 0


def test_an_unknown_token_id_is_not_found(alice: User) -> None:
    for token_id in ("1", str(2**63), "-1", "crm", "٣"):
        response = get(f"/demo/target/authentication/tokens/{token_id}/usage")
        error = assert_error(response, 404, "Token.NotFound")
        assert error["message"] == f"Client 'demo' has no integration token {token_id!r}."


def test_an_editor_and_a_caller_without_credentials_are_refused(bob: User) -> None:
    assert_error(get(OWN_URL, "bob"), 403, "Access.Denied")
    assert_error(HttpClient().get(OWN_URL), 401, "Authentication.Required")


def test_usage_is_read_only(alice: User) -> None:
    response = HttpClient().post(OWN_URL, headers=basic("alice"))

    assert_error(response, 405, "Method.NotAllowed")
    assert response["Allow"] == "GET"
