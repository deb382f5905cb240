from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import override_settings

from profiles.models import Client, Membership, Role

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing() -> Iterator[None]:
    """Django's advice for test suites: a cheap hasher, as tests sign in over and over."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture
def demo(db: None) -> Client:
    return Client.objects.create(code="demo", name="Demo")


@pytest.fixture
def other_client(db: None) -> Client:
    return Client.objects.create(code="acme", name="Acme")


def member(client: Client, username: str, role: Role) -> User:
    user = User.objects.create_user(username, password=PASSWORD)
    Membership.objects.create(user=user, client=client, role=role)
    return user


@pytest.fixture
def alice(demo: Client) -> User:
    """Approver of demo."""
    return member(demo, "alice", Role.APPROVER)


@pytest.fixture
def bob(demo: Client) -> User:
    """Editor of demo."""
    return member(demo, "bob", Role.EDITOR)


@pytest.fixture
def charlie(other_client: Client) -> User:
    """Approver of acme, a stranger to demo."""
    return member(other_client, "charlie", Role.APPROVER)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason="only meaningful on PostgreSQL (make test-postgresql)")
    for item in items:
        if item.get_closest_marker("postgresql"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _plain_static_files(settings: Any) -> None:
    """Pages render and static files are served without collectstatic, as in development."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.WHITENOISE_AUTOREFRESH = True


@pytest.fixture(autouse=True)
def immediate_tasks(settings: Any, tmp_path: Path) -> None:
    """Tasks run inside the call that enqueues them; batch files go to a per-test folder."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    settings.BATCH_DIR = tmp_path / "batches"
