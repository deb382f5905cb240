"""docs/security.md#hardening: ``var/`` and the SQLite database with its write-ahead log and
shared-memory files are readable by their owner only: from the first run, whatever the
umask, and at every start after an older run left them open; a start that cannot make them
so is refused.

Each server here runs on a SQLite database of its own (tests/gunicorn_server.py), whichever
database the suite runs on.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from adapters.local_state import sqlite_files
from tests.gunicorn_server import environment, gunicorn, manage
from tests.test_startup import start

# A directory no process may change the mode of, root included (procfs), to stand for a
# var/ that belongs to someone else.
UNCHANGEABLE = Path("/proc/self")


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """umask 022, the usual default, under which files are created readable by everyone;
    the servers and commands started here inherit it."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_first_run_creates_var_and_the_database_files_readable_by_their_owner_only(
    tmp_path: Path,
) -> None:
    var_dir = tmp_path / "var"

    with gunicorn(var_dir, WEB_CONCURRENCY="1") as server:
        # A request that reads the database: the server's connection keeps the WAL open.
        assert requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=10).ok
        database_files = {
            path.name: mode(path) for path in sqlite_files(var_dir / "targetadmin.sqlite3")
        }

    assert mode(var_dir) == 0o700
    assert database_files == {
        "targetadmin.sqlite3": 0o600,
        "targetadmin.sqlite3-wal": 0o600,
        "targetadmin.sqlite3-shm": 0o600,
    }
    assert mode(var_dir / "secret-key") == 0o600


def test_a_start_makes_private_what_an_older_run_left_open(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    env = environment(var_dir)
    manage(env, "migrate", "--noinput", "-v", "0")
    database = var_dir / "targetadmin.sqlite3"
    var_dir.chmod(0o755)
    database.chmod(0o644)

    manage(env, "check")

    assert (mode(var_dir), mode(database)) == (0o700, 0o600)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="procfs")
def test_gunicorn_refuses_to_start_while_var_stays_open_to_others(tmp_path: Path) -> None:
    refused = start(
        tmp_path,
        TARGETADMIN_VAR_DIR=str(UNCHANGEABLE),
        DATABASE_URL=f"sqlite:///{tmp_path / 'targetadmin.sqlite3'}",
        SECRET_KEY="k" * 50,
    )

    assert refused.returncode != 0
    output = refused.stdout + refused.stderr
    assert "targetadmin cannot start: targetadmin.E001: /proc/self is open to other users" in output
    assert "chmod 700 /proc/self" in output
    assert "Listening at" not in output
