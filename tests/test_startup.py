"""docs/operations.md#start-up-and-processes: the production server (gunicorn with
gunicorn.conf.py) refuses to start while a client allows its token to be retrieved again
and no token encryption key is configured (docs/tokens.md#retrievable-tokens); it starts on
an empty database, with a key, or with DEBUG on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

from tests.gunicorn_server import (
    ROOT,
    environment,
    free_port,
    gunicorn,
    manage,
    wait_until_listening,
)

GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "targetadmin.wsgi"]
NO_KEY = {"TOKEN_ENCRYPTION_KEYS": "", "DEBUG": "false", "WEB_CONCURRENCY": "1"}


def a_client_allowing_retrieval(var_dir: Path) -> None:
    """The migrated database of ``var_dir`` with client ``demo`` keeping copies, turned on
    while a key was configured."""
    env = environment(var_dir, TOKEN_ENCRYPTION_KEYS=Fernet.generate_key().decode())
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(
        env,
        "shell",
        "-c",
        "from profiles.access.actors import SYSTEM; "
        "from profiles.models import Client, ProfileApiSettings; "
        "demo = Client.objects.create(code='demo', name='Demo'); "
        "ProfileApiSettings.for_client(demo).set_token_retrievable(True, actor=SYSTEM)",
    )


def start(var_dir: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """gunicorn run to its end (it should not get as far as serving)."""
    env = environment(var_dir, BIND=f"127.0.0.1:{free_port()}", **settings)
    return subprocess.run(  # noqa: S603 - the tests' own command
        GUNICORN, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_gunicorn_refuses_to_start_without_a_key_while_a_client_keeps_copies(
    tmp_path: Path,
) -> None:
    a_client_allowing_retrieval(tmp_path)

    refused = start(tmp_path, **NO_KEY)

    assert refused.returncode != 0
    output = refused.stdout + refused.stderr
    assert "targetadmin cannot start: profiles.E001" in output
    assert "Client(s) demo allow the token to be retrieved again" in output
    assert "TOKEN_ENCRYPTION_KEYS" in output
    assert "Booting worker" not in output
    assert "Listening at" not in output


def test_gunicorn_starts_with_a_key_or_with_debug_on(tmp_path: Path) -> None:
    a_client_allowing_retrieval(tmp_path)

    with gunicorn(tmp_path, TOKEN_ENCRYPTION_KEYS=Fernet.generate_key().decode(), DEBUG="false"):
        pass
    with gunicorn(tmp_path, **{**NO_KEY, "DEBUG": "true"}) as server:
        pass

    assert "profiles.W001" in server.log_path.read_text()


def test_gunicorn_starts_on_a_database_not_migrated_yet(tmp_path: Path) -> None:
    port = free_port()
    env = environment(tmp_path, BIND=f"127.0.0.1:{port}", **NO_KEY)
    process = subprocess.Popen(  # noqa: S603 - the tests' own command
        GUNICORN,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until_listening(port, process)
    finally:
        process.terminate()
        process.wait(timeout=60)
