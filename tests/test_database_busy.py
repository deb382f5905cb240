"""A busy SQLite database: calls and pages that need to write while another connection holds
the write lock past the busy timeout are answered 503 with Retry-After, in the endpoint's
envelope, and change nothing; sending them again once the lock is free works. Reads go on.

The test database is copied to a file so that a second, independent connection can hold
SQLite's write lock, the way another gunicorn worker or the task worker would."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import OperationalError, connection
from django.test import Client as HttpClient

from profiles.access.actors import Actor
from profiles.ingest.batches import Batch
from profiles.models import AuditEvent, Client, Profile, ProfileApiSettings, ProfileToken, Role
from profiles.rules import faults
from tests.batches import stored_files
from tests.conftest import member
from tests.support import PASSWORD, basic

pytestmark = pytest.mark.django_db(transaction=True)

BUSY_TIMEOUT_SECONDS = 0.2


@pytest.fixture
def file_database(django_db_blocker: Any, tmp_path: Path) -> Iterator[Path]:
    """The (empty, migrated) test database as a file, with a short busy timeout."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's write lock")
    path = tmp_path / "targetadmin.sqlite3"
    with django_db_blocker.unblock():
        connection.ensure_connection()
        in_memory = connection.connection
        copy = sqlite3.connect(path)
        in_memory.backup(copy)
        copy.close()
        saved = dict(connection.settings_dict)
        connection.connection = None
        connection.settings_dict["NAME"] = str(path)
        connection.settings_dict["OPTIONS"] = {
            **saved["OPTIONS"],
            "timeout": BUSY_TIMEOUT_SECONDS,
        }
        try:
            yield path
        finally:
            connection.close()
            connection.settings_dict.clear()
            connection.settings_dict.update(saved)
            connection.connection = in_memory


@contextmanager
def write_lock(path: Path) -> Iterator[None]:
    """Hold SQLite's write lock from another connection, as a second writer would."""
    holder = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()


@pytest.fixture
def demo(file_database: Path) -> Client:
    client = Client.objects.create(code="demo", name="Demo")
    Profile.objects.create(
        client=client,
        pc_id="1368007744041-575948.01_00",
        attributes={"tier": {"value": "silver", "modifiedAt": "2026-01-01T00:00:00+00:00"}},
    )
    return client


@pytest.fixture
def alice(demo: Client) -> User:
    return member(demo, "alice", Role.APPROVER)


def tier(client: Client) -> str:
    profile = Profile.objects.get(client=client, pc_id="1368007744041-575948.01_00")
    return str(profile.attributes["tier"]["value"])


UPDATE = "/m2/demo/profile/update?mboxPC=1368007744041-575948.01_00&profile.tier=gold"


def test_it_answers_a_profile_update_503_with_retry_after_while_the_database_is_locked(
    demo: Client, file_database: Path
) -> None:
    with write_lock(file_database):
        response = HttpClient().post(UPDATE)

    assert response.status_code == 503
    assert response["Retry-After"] == str(faults.BUSY_RETRY_AFTER_SECONDS)
    assert response["Content-Type"].startswith("application/xml")
    body = response.content.decode()
    assert "<success>false</success>" in body
    assert "database is busy and nothing was changed" in body
    assert tier(demo) == "silver"


def test_it_applies_the_same_update_once_the_lock_is_released(
    demo: Client, file_database: Path
) -> None:
    http = HttpClient()
    with write_lock(file_database):
        assert http.post(UPDATE).status_code == 503

    response = http.post(UPDATE)

    assert response.status_code == 200
    assert tier(demo) == "gold"


def test_it_keeps_answering_fetches_while_a_writer_holds_the_lock(
    demo: Client, file_database: Path
) -> None:
    with write_lock(file_database):
        response = HttpClient().get("/rest/v1/profiles/1368007744041-575948.01_00?client=demo")

    assert response.status_code == 200
    assert json.loads(response.content)["profileAttributes"]["tier"]["value"] == "silver"


def test_it_answers_the_settings_screen_503_and_changes_nothing_while_locked(
    alice: User, demo: Client, file_database: Path
) -> None:
    http = HttpClient(raise_request_exception=False)
    http.force_login(alice)
    events = AuditEvent.objects.count()

    with write_lock(file_database):
        response = http.post(
            "/setup/demo/implementation/",
            {"require_authentication": "enabled", "save_authentication": "save"},
        )

    assert response.status_code == 503
    assert response["Retry-After"] == str(faults.BUSY_RETRY_AFTER_SECONDS)
    assert "Busy, please try again" in response.content.decode()
    assert not ProfileApiSettings.objects.filter(client=demo, require_authentication=True).exists()
    assert AuditEvent.objects.count() == events


def test_it_generates_no_token_while_locked(alice: User, demo: Client, file_database: Path) -> None:
    ProfileApiSettings.for_client(demo).set_require_authentication(True, actor=Actor.person(alice))
    http = HttpClient(raise_request_exception=False)
    http.force_login(alice)
    events = AuditEvent.objects.count()

    with write_lock(file_database):
        response = http.post(
            "/setup/demo/implementation/", {"generate": "generate", "expires_in_days": "90"}
        )

    assert response.status_code == 503
    assert not ProfileToken.objects.filter(client=demo).exists()
    assert AuditEvent.objects.count() == events


def test_it_answers_a_sign_in_503_while_locked_and_signs_nobody_in(
    alice: User, file_database: Path
) -> None:
    http = HttpClient(raise_request_exception=False)

    with write_lock(file_database):
        response = http.post("/accounts/login/", {"username": "alice", "password": PASSWORD})

    assert response.status_code == 503
    assert "_auth_user_id" not in http.session
    assert User.objects.get(username="alice").last_login is None


def test_it_still_fails_loudly_on_database_errors_that_are_not_a_busy_lock(
    file_database: Path,
) -> None:
    with pytest.raises(OperationalError) as raised, connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")

    assert not faults.is_database_busy(raised.value)
    assert not faults.is_database_busy(ValueError("database is locked"))


def test_it_answers_a_batch_upload_503_and_keeps_no_file_while_locked(
    demo: Client, file_database: Path, settings: Any
) -> None:
    body = b"batch=pcId,tier\n1368007744041-575948.01_00,gold\n"

    with write_lock(file_database):
        response = HttpClient().post(
            "/m2/demo/v2/profile/batchUpdate",
            data=body,
            content_type="application/x-www-form-urlencoded",
        )

    assert response.status_code == 503
    assert response["Retry-After"] == str(faults.BUSY_RETRY_AFTER_SECONDS)
    assert "database is busy and nothing was changed" in response.content.decode()
    assert stored_files() == []
    assert not Batch.objects.exists()
    assert tier(demo) == "silver"


def test_it_answers_a_json_bulk_request_503_while_locked(demo: Client, file_database: Path) -> None:
    document = {
        "profiles": [{"pcId": "1368007744041-575948.01_00", "attributes": {"tier": "gold"}}]
    }

    with write_lock(file_database):
        response = HttpClient().post(
            "/api/v1/clients/demo/profiles/bulk",
            data=json.dumps(document),
            content_type="application/json",
        )

    assert response.status_code == 503
    assert json.loads(response.content)["error"]["code"] == "database_busy"
    assert not Batch.objects.exists()
    assert tier(demo) == "silver"


def test_it_answers_the_management_api_503_in_its_envelope_and_issues_no_token_while_locked(
    alice: User, demo: Client, file_database: Path
) -> None:
    ProfileApiSettings.for_client(demo).set_require_authentication(True, actor=Actor.person(alice))

    with write_lock(file_database):
        response = HttpClient().post(
            "/demo/target/authentication/token?authorizationScope=profile_api",
            headers=basic("alice"),
        )

    assert response.status_code == 503
    assert response["Retry-After"] == str(faults.BUSY_RETRY_AFTER_SECONDS)
    body = json.loads(response.content)
    assert body["httpStatus"] == 503
    assert body["errors"][0]["errorCode"] == "database_busy"
    assert not ProfileToken.objects.filter(client=demo).exists()
