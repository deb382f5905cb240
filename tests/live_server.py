"""A real targetadmin for tests that drive it from outside: gunicorn and a task worker.

Started as ``make run`` starts them (gunicorn.conf.py, ``manage.py db_worker``), on a database
of its own: a fresh SQLite file, or, when the suite runs on PostgreSQL, a fresh database on
the same server. ``setup`` creates the ``demo`` client with Require Authentication on and
returns its token.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from profiles.ingest.batches import Batch

ROOT = Path(__file__).resolve().parent.parent

SETUP = """
import json, sys
import django
django.setup()
from io import StringIO
from django.core.management import call_command
call_command("migrate", "--noinput", verbosity=0)
call_command("create_client", "demo", stdout=StringIO())
call_command("set_authentication", "demo", "on", stdout=StringIO())
token = StringIO()
call_command("generate_token", "demo", stdout=token, stderr=StringIO())
print(json.dumps({"token": token.getvalue().strip()}))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    token: str
    database_url: str  # "" for the SQLite file below
    sqlite_path: Path
    env: dict[str, str]  # the server's environment, for manage.py commands against it

    def batches(self) -> list[dict[str, Any]]:
        """Every batch the server holds, read from its database: id, key and counts."""
        fields = {
            "id": "id",
            "idempotency_key": "idempotency_key",
            "batch_size": "batch_size",
            "successful_updates": "successful_updates",
            "status": "status",
        }
        columns = ", ".join(Batch._meta.get_field(name).column for name in fields.values())
        query = f"SELECT {columns} FROM {Batch._meta.db_table} ORDER BY created_at"  # noqa: S608
        if self.database_url:
            with psycopg.connect(self.database_url) as connection:
                rows = connection.execute(query).fetchall()
        else:
            with sqlite3.connect(self.sqlite_path) as connection:
                rows = connection.execute(query).fetchall()
        return [dict(zip(fields, row, strict=True)) for row in rows]


def _postgresql_database() -> tuple[str, str]:
    """A fresh database on the suite's PostgreSQL server: (its URL, its name)."""
    base = os.environ["DATABASE_URL"]
    name = f"live_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return urlsplit(base)._replace(path=f"/{name}").geturl(), name


def _drop_postgresql_database(name: str) -> None:
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def live_server(work: Path, **settings: str) -> Iterator[LiveServer]:
    """Serve on a free loopback port until the block ends; ``settings`` are environment."""
    port = free_port()
    env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"} | {
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "ALLOWED_HOSTS": "127.0.0.1",
        "TARGETADMIN_VAR_DIR": str(work / "var"),
        "DJANGO_SETTINGS_MODULE": "targetadmin.settings",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        **settings,
    }
    database_url, database_name = "", ""
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        database_url, database_name = _postgresql_database()
        env["DATABASE_URL"] = database_url
    processes: list[subprocess.Popen[bytes]] = []
    try:
        setup = subprocess.run(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", SETUP],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        token = json.loads(setup.stdout.decode().strip().splitlines()[-1])["token"]
        log = (work / "server.log").open("wb")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "targetadmin.wsgi"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        worker = [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay"]
        processes.append(
            subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
                [*worker, "--interval", "0.1", "-v", "0"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        _wait_until_listening(port, processes)
        yield LiveServer(
            f"http://127.0.0.1:{port}",
            token,
            database_url,
            work / "var" / "targetadmin.sqlite3",
            env,
        )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)
        if database_name:
            _drop_postgresql_database(database_name)


def _wait_until_listening(port: int, processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert all(process.poll() is None for process in processes), "the server exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the server did not start listening")
