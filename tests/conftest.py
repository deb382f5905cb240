from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import hypothesis
import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection
from django.test import override_settings

from profiles.access import throttle
from profiles.edge.request_log import JsonFormatter
from profiles.models import Client, Role
from profiles.tokens import secret
from tests.bad_input_world import world
from tests.front_door import both_doors, through_the_front_door
from tests.support import PASSWORD, member

__all__ = ["both_doors", "through_the_front_door", "world"]  # fixtures for every test module

pytest_plugins = ["tests.fixtures"]

# Property-based tests (hypothesis, schemathesis): a few examples in ``make test``, many in
# ``make fuzz`` (HYPOTHESIS_PROFILE=fuzz). Examples run inside one test's database
# transaction, so function-scoped fixtures are shared by design.
_SHARED_FIXTURES = [
    hypothesis.HealthCheck.function_scoped_fixture,
    hypothesis.HealthCheck.too_slow,
]
hypothesis.settings.register_profile(
    "ci", max_examples=25, deadline=None, suppress_health_check=_SHARED_FIXTURES
)
hypothesis.settings.register_profile(
    "fuzz", max_examples=2_000, deadline=None, suppress_health_check=_SHARED_FIXTURES
)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def django_db_modify_db_settings(request: pytest.FixtureRequest) -> None:
    """SQLite's test database stays in memory, as in Django's own SQLite backend.

    pytest-django knows that backend only by its dotted path, not ours (targetadmin.sqlite):
    without a name it would give each pytest-xdist worker a file named after the production
    database. In memory, each worker process has its own already.
    """
    test_database = settings.DATABASES["default"].setdefault("TEST", {})
    if connection.vendor == "sqlite" and not test_database.get("NAME"):
        test_database["NAME"] = ":memory:"
    request.getfixturevalue("django_db_modify_db_settings_parallel_suffix")


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


@pytest.fixture
def oscar(demo: Client) -> User:
    """Observer of demo."""
    return member(demo, "oscar", Role.OBSERVER)


@pytest.fixture
def peggy(demo: Client) -> User:
    """Publisher of demo."""
    return member(demo, "peggy", Role.PUBLISHER)


@pytest.fixture
def root(db: None) -> User:
    """A superuser, a member of no client."""
    return User.objects.create_superuser("root", password=PASSWORD)


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


# TARGETADMIN_TEST_BATCH_STORAGE=database runs the suite with batch files kept in the
# database (docs/development.md#tests), as BATCH_STORAGE=database does.
BATCH_STORAGE_BACKENDS = {
    "directory": "profiles.ingest.storage.DirectoryStorage",
    "database": "profiles.ingest.storage.DatabaseStorage",
}


@pytest.fixture(autouse=True)
def immediate_tasks(settings: Any, tmp_path: Path) -> None:
    """Tasks run inside the call that enqueues them; batch files go to a per-test folder."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    settings.BATCH_DIR = tmp_path / "batches"
    backend = BATCH_STORAGE_BACKENDS[os.environ.get("TARGETADMIN_TEST_BATCH_STORAGE", "directory")]
    settings.STORAGES = {**settings.STORAGES, "batches": {"BACKEND": backend}}


@pytest.fixture(autouse=True)
def _throttle_counts_end_with_each_test(
    request: pytest.FixtureRequest, django_db_blocker: Any
) -> Iterator[None]:
    """The refusals the throttles count in the database cache end with each test that used the
    database: a transactional test's are not rolled back, and past the limit they would have a
    later test's refused calls answered 429 until the window ends."""
    yield
    if "django_db_setup" in request.fixturenames:
        with django_db_blocker.unblock():
            cache.clear()


@pytest.fixture(autouse=True)
def _throttle_clock_stands_still(monkeypatch: pytest.MonkeyPatch) -> None:
    """The throttles read one instant throughout a test: the refusals it counts fall in one
    window, and every Retry-After it is answered reads the same, though the test straddles a
    window's end. (Tests of the windows themselves pass their own instants.)"""
    instant = time.time()
    monkeypatch.setattr(throttle, "time", SimpleNamespace(time=lambda: instant))


# The key retrievable tokens are sealed with in tests (docs/tokens.md#retrievable-tokens),
# whatever the environment or var/ holds; tests of keys override it.
TEST_TOKEN_ENCRYPTION_KEY = Fernet.generate_key().decode("ascii")


@pytest.fixture(autouse=True)
def token_encryption_key(settings: Any) -> None:
    settings.TOKEN_ENCRYPTION_KEYS = (TEST_TOKEN_ENCRYPTION_KEY,)


MIN_WATCHED_SECRET_LENGTH = 8


class _SecretWatch(logging.Handler):
    """Keeps every log line as written (JSON) and as the raw message it was made from."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self.lines.append(self.format(record))


@pytest.fixture(autouse=True)
def no_secret_is_logged(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test also checks that no token plaintext or password it used reached a log.

    Token plaintexts are collected where they are made, passwords where they are set; the
    log is captured at DEBUG, before the formatter's own redaction and after it.
    """
    used: list[str] = []
    generate, set_password = secret.generate, AbstractBaseUser.set_password

    def generate_and_note() -> str:
        used.append(generate())
        return used[-1]

    def set_and_note(user: AbstractBaseUser, raw_password: str | None) -> None:
        # ModelBackend also hashes whatever password is tried for a username that does not
        # exist; a few characters of that would match log lines by chance.
        if raw_password and len(raw_password) >= MIN_WATCHED_SECRET_LENGTH:
            used.append(raw_password)
        set_password(user, raw_password)

    monkeypatch.setattr(secret, "generate", generate_and_note)
    monkeypatch.setattr(AbstractBaseUser, "set_password", set_and_note)
    watch = _SecretWatch()
    root = logging.getLogger()
    level = root.level
    root.addHandler(watch)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(watch)
        root.setLevel(level)
    leaked = {secret for secret in used for line in watch.lines if secret in line}
    assert not leaked, f"{len(leaked)} secret(s) written to the log"
