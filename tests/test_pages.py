"""Sign-in, the home page's client switcher, the navigation and the error pages."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import views as auth_views
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.test import Client as HttpClient
from django.urls import URLPattern, URLResolver, path

from profiles.models import Client, Membership, Role
from profiles.pages import home, implementation
from tests.conftest import member
from tests.support import signed_in


def test_it_sends_anonymous_people_to_the_sign_in_page(db: None) -> None:
    response = HttpClient().get("/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_it_signs_in_and_lands_a_single_client_user_on_their_screen(alice: User) -> None:
    http = HttpClient()
    login = http.get("/accounts/login/").content.decode()
    assert re.search(r'<label\s+for="id_username"', login)
    assert re.search(r'<label\s+for="id_password"', login)

    response = http.post(
        "/accounts/login/", {"username": "alice", "password": "correct horse battery staple"}
    )
    assert response["Location"] == "/"
    assert http.get("/")["Location"] == "/setup/demo/implementation/"


def test_it_refuses_a_wrong_password(alice: User) -> None:
    http = HttpClient()

    response = http.post("/accounts/login/", {"username": "alice", "password": "nope"})

    assert response.status_code == 200
    assert "_auth_user_id" not in http.session
    assert http.get("/").status_code == 302


def test_it_signs_out_with_a_post(alice: User) -> None:
    http = signed_in(alice)

    assert http.post("/accounts/logout/")["Location"] == "/accounts/login/"
    assert http.get("/").status_code == 302


def test_it_offers_a_switcher_to_a_user_of_several_clients(
    alice: User, other_client: Client
) -> None:
    Client.objects.create(code="zeta", name="Zeta")  # alice is no member of it
    Membership.objects.create(user=alice, client=other_client, role=Role.EDITOR)

    response = signed_in(alice).get("/")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'href="/setup/demo/implementation/"' in html
    assert 'href="/setup/acme/implementation/"' in html
    assert "zeta" not in html
    assert "Switch client" in html


def test_it_offers_a_superuser_every_client(demo: Client, other_client: Client, root: User) -> None:

    html = signed_in(root).get("/").content.decode()

    assert 'href="/setup/demo/implementation/"' in html
    assert 'href="/setup/acme/implementation/"' in html


def test_it_tells_a_user_without_clients_to_ask_an_operator(db: None) -> None:
    dave = User.objects.create_user("dave", password="correct horse battery staple")

    html = signed_in(dave).get("/").content.decode()

    assert "not a member of any client" in html


def test_it_explains_the_403_to_a_member_below_approver(demo: Client) -> None:
    erin = member(demo, "erin", Role.PUBLISHER)

    response = signed_in(erin).get("/setup/demo/implementation/")

    assert response.status_code == 403
    assert "Only Approvers can manage Profile API Settings." in response.content.decode()


def test_it_answers_404_to_a_stranger_without_naming_the_client(
    charlie: User, demo: Client
) -> None:
    response = signed_in(charlie).get("/setup/demo/implementation/")

    assert response.status_code == 404
    html = response.content.decode()
    assert "Page not found" in html
    assert "Demo" not in html


def _placeholder_page(request: HttpRequest, **client: str) -> HttpResponse:
    return render(request, "base.html")


# Routes without the Profiles page, and with an unnamed Batches page.
urlpatterns: list[URLPattern | URLResolver] = [
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", home.home, name="home"),
    path(
        "setup/<slug:client_code>/implementation/",
        implementation.implementation,
        name="implementation",
    ),
    path("clients/<str:client>/batches/", _placeholder_page),
]


def test_it_links_the_client_pages(alice: User) -> None:
    html = signed_in(alice).get("/setup/demo/implementation/").content.decode()

    assert 'href="/setup/demo/implementation/" aria-current="page"' in html
    assert 'href="/clients/demo/profiles/"' in html
    assert 'href="/clients/demo/batches/"' in html


@pytest.mark.urls("tests.test_pages")
def test_it_links_only_to_client_pages_that_are_routed(alice: User) -> None:
    html = signed_in(alice).get("/setup/demo/implementation/").content.decode()

    assert "/clients/demo/profiles/" not in html
    assert 'href="/clients/demo/batches/"' in html


@pytest.mark.urls("tests.test_pages")
def test_it_shows_the_navigation_on_client_pages_to_members_only(
    alice: User, charlie: User
) -> None:
    assert "Client pages" in signed_in(alice).get("/clients/demo/batches/").content.decode()
    assert "Client pages" not in signed_in(charlie).get("/clients/demo/batches/").content.decode()
