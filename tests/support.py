"""What the tests share: the personas' password and membership, signing in, Basic auth, the
settings screen's path, a Bearer header, and ``manage.py`` or a probe module run in a process
of its own.

The personas themselves (alice, bob, charlie, oscar, peggy, root) are fixtures in
``tests/conftest.py``, built with :func:`member`; shared fixtures are in ``tests/fixtures.py``.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.test import Client as HttpClient
from django.urls import reverse

from profiles.models import Client, Membership, Role

ROOT = Path(__file__).resolve().parent.parent
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


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization: Bearer`` header of a call that presents ``token``, as the test
    client takes it (``HTTP_…``)."""
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def settings_path(client: Client) -> str:
    """The path of ``client``'s settings screen (Profile API Settings)."""
    return reverse("implementation", kwargs={"client_code": client.code})


def manage(
    env: Mapping[str, str], *arguments: str, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """``manage.py arguments`` in a new process with exactly the environment ``env``, its
    output captured as text; with ``check``, a non-zero exit fails, showing what it printed."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check and done.returncode:
        raise AssertionError(
            f"manage.py {' '.join(arguments)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
    return done


def run_probe(
    module: str, env: Mapping[str, str], *arguments: str, given: str | None = None
) -> dict[str, Any]:
    """The JSON object ``python -m module arguments`` prints, run in a new process with the
    environment ``env`` and ``given`` on its standard input; a non-zero exit fails."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", module, *arguments],
        input=given,
        cwd=ROOT,
        env=dict(env),
        check=True,
        timeout=600,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result
