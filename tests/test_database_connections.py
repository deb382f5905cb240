"""A kept PostgreSQL connection is health-checked only after idle time
(docs/operations.md#database-connections)."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import close_old_connections, connection

from targetadmin.postgresql import base

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]


def _between_requests() -> None:
    """What Django's request_finished and request_started signals do to connections."""
    close_old_connections()
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

    close_old_connections()
    time.sleep(0.1)
    close_old_connections()
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
