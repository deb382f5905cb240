"""The repository's gunicorn (gunicorn.conf.py) as a real process on a loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.loopback import free_port, wait_until_listening
from tests.support import manage

ROOT = Path(__file__).resolve().parent.parent
# Settings a developer's shell may hold that would make the server under test differ from
# the configuration the tests describe.
_OUTER_SETTINGS = ("DATABASE_URL", "BIND", "WEB_CONCURRENCY")


@dataclass(frozen=True)
class Server:
    port: int
    log_path: Path
    pid: int = 0  # gunicorn's master, which leads a process group of its own

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def environment(var_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a server with a fresh SQLite database of its own in ``var_dir``."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name not in _OUTER_SETTINGS and not name.startswith("GUNICORN_")
    }
    return (
        inherited
        | {
            "ALLOWED_HOSTS": "127.0.0.1",
            "STATIC_ROOT": str(var_dir),
            "TARGETADMIN_VAR_DIR": str(var_dir),
            "DJANGO_SETTINGS_MODULE": "targetadmin.settings",
        }
        | settings
    )


@contextmanager
def gunicorn(var_dir: Path, **settings: str) -> Iterator[Server]:
    """gunicorn as ``make run`` starts it, on a migrated database, until the block ends.

    ``settings`` are environment variables (``WEB_CONCURRENCY="1"``); its own output, one
    JSON object per line, is in ``Server.log_path`` (complete once the block has ended).
    gunicorn and its workers are a process group of their own (``Server.pid``), so a test
    can kill them all at once.
    """
    port = free_port()
    env = environment(var_dir, BIND=f"127.0.0.1:{port}", **settings)
    manage(env, "migrate", "--noinput", "-v", "0", check=True)
    log_path = var_dir / "gunicorn.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "targetadmin.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until_listening(port, process)
            yield Server(port, log_path, process.pid)
        finally:
            process.terminate()
            process.wait(timeout=60)


def add_demo_client(var_dir: Path) -> None:
    """The client ``demo`` in the database of a server started with ``gunicorn(var_dir)``."""
    manage(
        environment(var_dir),
        "shell",
        "-c",
        "from profiles.models import Client; Client.objects.create(code='demo', name='Demo')",
        check=True,
    )
