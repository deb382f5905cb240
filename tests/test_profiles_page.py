"""The read-only Profiles page: members of a client look up one profile."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client as HttpClient

from profiles.models import Client, Profile, Role
from tests.conftest import member
from tests.profile_api import PC_ID, THIRD_PARTY_ID, a_profile
from tests.support import signed_in

PAGE = "/clients/demo/profiles/"


@pytest.fixture
def profile(demo: Client) -> Profile:
    return a_profile(demo, city="Lyon", note="<script>alert(1)</script>")


def test_it_sends_anonymous_visitors_to_the_login_page(client: HttpClient, demo: Client) -> None:
    response = client.get(PAGE)
    assert response.status_code == 302
    assert "login" in response["Location"]
    assert "next=/clients/demo/profiles/" in response["Location"]


def test_it_hides_the_client_from_a_non_member(charlie: User, demo: Client) -> None:
    assert signed_in(charlie).get(PAGE).status_code == 404
    assert signed_in(charlie).get("/clients/nobody/profiles/").status_code == 404


@pytest.mark.parametrize("role", list(Role))
def test_it_shows_a_profile_by_pc_id_to_a_member_of_any_role(
    demo: Client, profile: Profile, role: Role
) -> None:
    dana = member(demo, "dana", role)
    response = signed_in(dana).get(PAGE, {"by": "pcId", "profile_id": PC_ID})
    assert response.status_code == 200
    page = response.content.decode()
    assert PC_ID in page
    assert THIRD_PARTY_ID in page
    assert "Lyon" in page


def test_it_shows_a_profile_by_third_party_id_with_modified_times(
    bob: User, profile: Profile
) -> None:
    response = signed_in(bob).get(PAGE, {"by": "thirdPartyId", "profile_id": THIRD_PARTY_ID})
    page = response.content.decode()
    assert PC_ID in page
    stamp = profile.attributes["city"]["modifiedAt"]
    assert f'datetime="{stamp}"' in page


def test_it_escapes_attribute_values(bob: User, profile: Profile) -> None:
    page = signed_in(bob).get(PAGE, {"by": "pcId", "profile_id": PC_ID}).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_it_says_when_no_profile_matches(bob: User, profile: Profile) -> None:
    response = signed_in(bob).get(PAGE, {"by": "thirdPartyId", "profile_id": "nobody"})
    assert response.status_code == 200
    assert "No profile found for client demo with thirdPartyId nobody" in response.content.decode()


def test_it_never_shows_another_clients_profile(
    alice: User, other_client: Client, demo: Client
) -> None:
    Profile.objects.create(client=other_client, pc_id="acme-visitor", attributes={})
    page = signed_in(alice).get(PAGE, {"by": "pcId", "profile_id": "acme-visitor"})
    assert "No profile found" in page.content.decode()


def test_it_shows_only_the_form_before_a_search(bob: User, profile: Profile) -> None:
    page = signed_in(bob).get(PAGE).content.decode()
    assert "Look up" in page
    assert "No profile found" not in page
    assert PC_ID not in page


def test_it_refuses_an_id_no_profile_can_have(bob: User, profile: Profile) -> None:
    response = signed_in(bob).get(PAGE, {"by": "thirdPartyId", "profile_id": "a/b"})
    page = response.content.decode()
    assert "must not contain" in page
    assert "No profile found" not in page
    response = signed_in(bob).get(PAGE, {"by": "nickname", "profile_id": "x"})
    assert "No profile found" not in response.content.decode()


def test_it_is_read_only(bob: User, profile: Profile) -> None:
    response = signed_in(bob).post(PAGE, {"by": "pcId", "profile_id": PC_ID})
    assert response.status_code == 405
