"""A kept PostgreSQL connection is health-checked only after idle time, and the profile APIs'
statements are prepared on it once (docs/operations.md#database-connections)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import close_old_connections, connection

from adapters.postgresql import base
from profiles.store import reads

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]


def _between_requests(idle_seconds: float = 0) -> None:
    """What Django's request_finished and request_started signals do to connections, with
    ``idle_seconds`` between the two requests."""
    close_old_connections()
    time.sleep(idle_seconds)
    close_old_connections()


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    return int(pid)


def _count_health_checks(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    checks: list[bool] = []
    usable = connection.is_usable

    def counted() -> bool:
        checks.append(True)
        return usable()

    monkeypatch.setattr(connection, "is_usable", counted)
    return checks


def test_a_connection_used_a_moment_ago_is_not_checked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = _backend_pid()
    checks = _count_health_checks(monkeypatch)

    _between_requests()
    second = _backend_pid()

    assert checks == []
    assert second == first


def test_a_connection_idle_past_the_limit_is_checked_before_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(base, "HEALTH_CHECK_AFTER_IDLE_SECONDS", 0.05)
    first = _backend_pid()
    checks = _count_health_checks(monkeypatch)

    _between_requests(idle_seconds=0.1)
    second = _backend_pid()

    assert checks == [True]
    assert second == first


def test_a_connection_the_server_dropped_while_idle_is_replaced_before_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(base, "HEALTH_CHECK_AFTER_IDLE_SECONDS", 0.05)
    dropped = _backend_pid()
    close_old_connections()
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [dropped])
    time.sleep(0.1)

    close_old_connections()
    replacement = _backend_pid()

    assert replacement != dropped


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [str(statement) for (statement,) in cursor.fetchall()]


def test_the_profile_apis_statements_are_prepared_once_per_connection() -> None:
    first = reads.fetch_one("SELECT %s::int + 40", [1])
    again = reads.fetch_one("SELECT %s::int + 40", [2])

    assert (first, again) == ((41,), (42,))
    assert [s for s in _prepared_statements() if "+ 40" in s] == ["SELECT $1::int + 40"]


def test_the_orms_statements_are_not_counted_toward_preparing() -> None:
    reads.fetch_one("SELECT %s::int + 60", [1])
    with connection.cursor() as cursor:  # the ORM's cursor, as a batch file's chunk is stored
        for _ in range(6):
            cursor.execute("SELECT %s::bytea", [b"x" * 100_000])

    assert connection.connection.prepare_threshold is None
    assert [s for s in _prepared_statements() if "bytea" in s] == []


def test_with_prepared_statements_off_nothing_is_prepared(settings: Any) -> None:
    settings.DATABASE_PREPARED_STATEMENTS = False

    answer = reads.fetch_one("SELECT %s::int + 50", [1])

    assert answer == (51,)
    assert [s for s in _prepared_statements() if "+ 50" in s] == []


@pytest.mark.parametrize(("value", "prepared"), [("true", True), ("false", False)])
def test_database_prepared_statements_is_read_from_the_environment(
    value: str, prepared: bool
) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.conf import settings; "
            "print(settings.DATABASES['default']['ENGINE'], settings.DATABASE_PREPARED_STATEMENTS)",
        ],
        env=os.environ
        | {
            "DJANGO_SETTINGS_MODULE": "targetadmin.settings",
            "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
            "DATABASE_PREPARED_STATEMENTS": value,
        },
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
    )

    assert completed.stdout.split() == ["adapters.postgresql", str(prepared)]
