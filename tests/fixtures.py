"""Fixtures that more than one test file uses, registered by ``tests/conftest.py``
(``pytest_plugins``). The personas and the suite-wide settings are in conftest.py itself."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections
from django.test import Client as HttpClient

from bench.product import worker_environment
from profiles.models import Client
from profiles.tokens import tally
from tests.profile_api import ENDPOINTS, Endpoint, a_profile
from tests.provider import (
    API_AUDIENCE,
    CLIENT_ID,
    CLIENT_SECRET,
    IdentityProvider,
    running_provider,
)

# Where alice's browser calls from in the fixture below; the audit trail records it.
ALICES_ADDRESS = "203.0.113.7"
# The busy timeout of ``file_database``: short, so a locked database answers at once.
BUSY_TIMEOUT_SECONDS = 0.2


@pytest.fixture
def alice_signed_in(alice: User) -> HttpClient:
    """alice's browser, signed in, calling from ``ALICES_ADDRESS``."""
    http = HttpClient(REMOTE_ADDR=ALICES_ADDRESS)
    http.force_login(alice)
    return http


@pytest.fixture(scope="session")
def identity_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityProvider]:
    """A real OpenID Connect provider in a process of its own (tests/provider.py)."""
    with running_provider(tmp_path_factory.mktemp("identity-provider")) as provider:
        yield provider


@pytest.fixture
def single_sign_on(identity_provider: IdentityProvider, settings: Any) -> IdentityProvider:
    """targetadmin configured to sign people in through ``identity_provider``, which
    behaves (no fault)."""
    settings.OIDC_ISSUER = identity_provider.issuer
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_API_AUDIENCE = API_AUDIENCE
    settings.OIDC_PROVIDER_NAME = "Test provider"
    # As targetadmin/settings.py allows the issuer's origin when it reads OIDC_ISSUER.
    settings.SECURE_CSP = {
        **settings.SECURE_CSP,
        "form-action": [*settings.SECURE_CSP["form-action"], identity_provider.url],
    }
    identity_provider.fault("")
    return identity_provider


@pytest.fixture(params=ENDPOINTS, ids=lambda e: e.name)
def endpoint(request: pytest.FixtureRequest) -> Endpoint:
    """Each profile API endpoint in turn."""
    endpoint: Endpoint = request.param
    return endpoint


@pytest.fixture
def http(demo: Client) -> HttpClient:
    """A script's HTTP client, with a profile of demo (city Lyon) to fetch and update."""
    a_profile(demo, city="Lyon")
    return HttpClient()


@contextmanager
def database_in_a_file(django_db_blocker: Any, path: Path, **options: object) -> Iterator[Path]:
    """SQLite's in-memory test database copied to ``path``, which Django's connections use
    until the block ends (``options`` join the connection's, like a busy ``timeout``)."""
    with django_db_blocker.unblock():
        connection.ensure_connection()
        in_memory = connection.connection
        with closing(sqlite3.connect(path)) as copy:
            in_memory.backup(copy)
        saved = dict(connection.settings_dict)
        connection.connection = None
        connection.settings_dict["NAME"] = str(path)
        connection.settings_dict["OPTIONS"] = {**saved["OPTIONS"], **options}
        try:
            yield path
        finally:
            connections.close_all()
            connection.settings_dict.clear()
            connection.settings_dict.update(saved)
            connection.connection = in_memory


@pytest.fixture
def file_database(django_db_blocker: Any, tmp_path: Path) -> Iterator[Path]:
    """The (empty, migrated) test database as a file, with a short busy timeout, so that a
    second, independent connection can hold SQLite's write lock. SQLite only."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's write lock")
    path = tmp_path / "targetadmin.sqlite3"
    with database_in_a_file(django_db_blocker, path, timeout=BUSY_TIMEOUT_SECONDS):
        yield path


def worker_environment_on_this_database(var_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a task worker process on the test's own database (PostgreSQL's, or
    a SQLite file the test fills), with a batch directory in ``var_dir``."""
    env = worker_environment(var_dir, **settings)
    if connection.vendor == "postgresql":
        env["DATABASE_URL"] = "postgres://{USER}:{PASSWORD}@{HOST}:{PORT}/{NAME}".format(
            **connection.settings_dict
        )
    (var_dir / "batches").mkdir(parents=True)
    return env


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> tally.Tally:
    """A fresh tally of token usage for the gate to count into, as a new process has (a live
    server in this process counts into it too)."""
    fresh = tally.Tally()
    monkeypatch.setattr(tally, "COUNTS", fresh)
    return fresh


class RootRecords(logging.Handler):
    """Every record that reaches the root logger, at any level."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def of(self, name: str) -> list[logging.LogRecord]:
        return [record for record in self.records if record.name == name]

    @property
    def lines(self) -> list[tuple[str, str, str]]:
        """Each record as (logger, level, message)."""
        return [(r.name, r.levelname, r.getMessage()) for r in self.records]


@pytest.fixture
def root_records() -> Iterator[RootRecords]:
    handler = RootRecords()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
