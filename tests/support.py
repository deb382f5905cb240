"""What the tests share about people: personas' password, membership, signing in, Basic auth.

The personas themselves (alice, bob, charlie, oscar, peggy, root) are fixtures in
``tests/conftest.py``, built with :func:`member`.
"""

from __future__ import annotations

import base64

from django.contrib.auth.models import User
from django.test import Client as HttpClient
from django.urls import reverse

from profiles.models import Client, Membership, Role

PASSWORD = "correct horse battery staple"


def member(client: Client, username: str, role: Role) -> User:
    """A new user holding ``role`` in ``client``, with the personas' password."""
    user = User.objects.create_user(username, password=PASSWORD)
    Membership.objects.create(user=user, client=client, role=role)
    return user


def signed_in(user: User) -> HttpClient:
    """A browser-like test client with ``user`` signed in."""
    http = HttpClient()
    http.force_login(user)
    return http


def basic_authorization(username: str, password: str = PASSWORD) -> str:
    """The value of an ``Authorization: Basic`` header for ``username:password``."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def basic(username: str, password: str = PASSWORD) -> dict[str, str]:
    """Headers that sign a management API call in as ``username``."""
    return {"Authorization": basic_authorization(username, password)}


def settings_path(client: Client) -> str:
    """The path of ``client``'s settings screen (Profile API Settings)."""
    return reverse("implementation", kwargs={"client_code": client.code})
