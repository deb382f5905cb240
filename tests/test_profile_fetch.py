"""docs/api.md#profile-fetch: fetching one profile by pcId or thirdPartyId."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client as HttpClient

from profiles.models import Client, Profile
from tests.profile_api import (
    PC_ID,
    THIRD_PARTY_ID,
    a_profile,
    issue_token,
    require_authentication,
)

# Through Django's test client and through the fast lane in front of it.
pytestmark = pytest.mark.usefixtures("both_doors")

OFFSET = re.compile(r".+T.+[+-]\d\d:\d\d\Z")


@pytest.fixture
def profile(demo: Client) -> Profile:
    return a_profile(demo, city="Lyon", tier="gold")


def expected(profile: Profile, **extra: str) -> dict[str, Any]:
    return {
        "client": "demo",
        "visitorId": PC_ID,
        **extra,
        "modifiedAt": profile.modified_at.isoformat(),
        "profileAttributes": {
            name: {"value": entry["value"], "modifiedAt": entry["modifiedAt"]}
            for name, entry in profile.attributes.items()
        },
    }


def test_it_answers_the_exact_document_by_pc_id(client: HttpClient, profile: Profile) -> None:
    response = client.get(f"/rest/v1/profiles/{PC_ID}?client=demo")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    document = response.json()
    assert document == expected(profile)
    assert list(document) == ["client", "visitorId", "modifiedAt", "profileAttributes"]
    assert OFFSET.match(document["modifiedAt"])
    assert OFFSET.match(document["profileAttributes"]["city"]["modifiedAt"])


def test_it_answers_the_exact_document_by_third_party_id(
    client: HttpClient, profile: Profile
) -> None:
    response = client.get(f"/rest/v1/profiles/thirdPartyId/{THIRD_PARTY_ID}?client=demo")
    assert response.status_code == 200
    document = response.json()
    assert document == expected(profile, thirdPartyId=THIRD_PARTY_ID)
    assert list(document) == [
        "client",
        "visitorId",
        "thirdPartyId",
        "modifiedAt",
        "profileAttributes",
    ]


def test_it_shows_what_an_update_wrote(client: HttpClient, profile: Profile) -> None:
    client.get(f"/m2/demo/profile/update?mboxPC={PC_ID}&profile.city=Paris&profile.age=21")
    attributes = client.get(f"/rest/v1/profiles/{PC_ID}?client=demo").json()["profileAttributes"]
    assert {name: entry["value"] for name, entry in attributes.items()} == {
        "age": "21",
        "city": "Paris",
        "tier": "gold",
    }


def test_it_answers_adobes_exact_not_found_messages(client: HttpClient, demo: Client) -> None:
    by_pc_id = client.get("/rest/v1/profiles/123-missing?client=demo")
    assert by_pc_id.status_code == 404
    assert by_pc_id.json() == {
        "status": 404,
        "message": "No profile found for client demo with mboxPC=123-missing",
    }
    by_third_party_id = client.get("/rest/v1/profiles/thirdPartyId/nobody?client=demo")
    assert by_third_party_id.status_code == 404
    assert by_third_party_id.json() == {
        "status": 404,
        "message": "No profile found for client demo with third party id=nobody",
    }


def test_it_never_shows_another_clients_profile(
    client: HttpClient, profile: Profile, other_client: Client
) -> None:
    response = client.get(f"/rest/v1/profiles/{PC_ID}?client=acme")
    assert response.status_code == 404
    assert response.json()["message"] == f"No profile found for client acme with mboxPC={PC_ID}"


def test_it_needs_the_client_parameter(client: HttpClient, profile: Profile) -> None:
    response = client.get(f"/rest/v1/profiles/{PC_ID}")
    assert response.status_code == 400
    assert response.json() == {
        "status": 400,
        "message": "The 'client' query parameter is required.",
    }


def test_it_answers_an_unknown_or_malformed_client_as_one_that_requires_a_token(
    client: HttpClient, profile: Profile
) -> None:
    # So client codes cannot be enumerated (docs/api.md#authentication).
    assert client.get(f"/rest/v1/profiles/{PC_ID}?client=nobody").json()["status"] == 401
    assert client.get(f"/rest/v1/profiles/{PC_ID}?client=DEMO%00").json()["status"] == 401


def test_it_refuses_writes(client: HttpClient, profile: Profile) -> None:
    response = client.post(f"/rest/v1/profiles/{PC_ID}?client=demo")
    assert response.status_code == 405
    assert response.json()["status"] == 405


def test_an_authenticated_fetch_costs_at_most_two_queries(
    client: HttpClient,
    profile: Profile,
    demo: Client,
    django_assert_max_num_queries: Any,
) -> None:
    require_authentication(demo)
    token = issue_token(demo)
    # A token's first call of the minute also records its use (docs/tokens.md#last-used).
    with django_assert_max_num_queries(3):
        response = client.get(
            f"/rest/v1/profiles/{PC_ID}?client=demo", HTTP_AUTHORIZATION=f"Bearer {token}"
        )
    assert response.status_code == 200
    with django_assert_max_num_queries(2):
        response = client.get(
            f"/rest/v1/profiles/{PC_ID}?client=demo", HTTP_AUTHORIZATION=f"Bearer {token}"
        )
    assert response.status_code == 200
    with django_assert_max_num_queries(2):
        response = client.get(
            f"/rest/v1/profiles/thirdPartyId/{THIRD_PARTY_ID}?client=demo",
            HTTP_ACCESS_TOKEN=token,
        )
    assert response.status_code == 200


def test_an_open_fetch_costs_at_most_two_queries(
    client: HttpClient, profile: Profile, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(2):
        assert client.get(f"/rest/v1/profiles/{PC_ID}?client=demo").status_code == 200


def test_it_answers_ids_no_profile_can_have_with_404(client: HttpClient, profile: Profile) -> None:
    for path in ("/rest/v1/profiles/a%00b", "/rest/v1/profiles/thirdPartyId/a%00b"):
        response = client.get(f"{path}?client=demo")
        assert response.status_code == 404
        assert response.json()["message"].startswith("No profile found for client demo with ")
