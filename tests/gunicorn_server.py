"""The repository's gunicorn (gunicorn.conf.py) as a real process on a loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the server did not start listening")


def environment(var_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a server with a fresh SQLite database of its own in ``var_dir``,
    and an empty directory of static files beside it (whitenoise refuses a socket in one)."""
    static_root = var_dir / "static"
    static_root.mkdir(parents=True, exist_ok=True)
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name not in _OUTER_SETTINGS and not name.startswith("GUNICORN_")
    }
    return (
        inherited
        | {
            "ALLOWED_HOSTS": "127.0.0.1",
            "STATIC_ROOT": str(static_root),
            "TARGETADMIN_VAR_DIR": str(var_dir),
            "DJANGO_SETTINGS_MODULE": "targetadmin.settings",
        }
        | settings
    )


def manage(env: dict[str, str], *arguments: str) -> None:
    command = [sys.executable, "manage.py", *arguments]
    subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=300)  # noqa: S603 - the tests' own


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
    manage(env, "migrate", "--noinput", "-v", "0")
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
    )


def send(
    port: int,
    path: str,
    headers: dict[str, str],
    pieces: list[bytes],
    *,
    method: str = "POST",
    hang_up: bool = True,
) -> tuple[int, str]:
    """Send a request head and body pieces as written; ``hang_up`` ends the upload there.

    Returns the answer's status and body.
    """
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        for piece in pieces:
            connection.sendall(piece)
        if hang_up:
            connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2].decode()


def chunks(*pieces: bytes) -> list[bytes]:
    """The pieces in HTTP/1.1 chunked framing, with the last chunk."""
    return [b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces] + [b"0\r\n\r\n"]


def in_shell(var_dir: Path, code: str) -> str:
    """What ``code`` prints, run by ``manage.py shell`` on the database of a server started
    with ``gunicorn(var_dir)`` (the tests' helpers importable)."""
    command = [sys.executable, "manage.py", "shell", "-c", code]
    ran = subprocess.run(  # noqa: S603 - the tests' own
        command,
        cwd=ROOT,
        env=environment(var_dir),
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return ran.stdout
