"""gunicorn with the repository's gunicorn.conf.py: serves, and logs JSON without secrets."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET_IN_QUERY = "tpa_" + "Q7" * 24 + "z"
SECRET_IN_HEADER = "tpa_" + "H3" * 24 + "y"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_listening(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, "gunicorn exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("gunicorn did not start listening")


def test_it_serves_requests_and_logs_json_lines_without_secrets(tmp_path: Path) -> None:
    port = free_port()
    # A fresh SQLite database of its own, migrated as a deployment's would be.
    env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"} | {
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "GUNICORN_ACCESS_LOG": "-",
        "ALLOWED_HOSTS": "127.0.0.1",
        "STATIC_ROOT": str(tmp_path),
        "TARGETADMIN_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "targetadmin.settings",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "targetadmin.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_listening(port, server)
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/healthz?access_token={SECRET_IN_QUERY}",
                headers={"Authorization": f"Bearer {SECRET_IN_HEADER}", "X-Request-ID": "probe-1"},
            )
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
                assert response.status == 200
                assert response.headers["X-Request-ID"] == "probe-1"
        finally:
            server.terminate()
            server.wait(timeout=60)

    written = log_path.read_text()
    for secret in (SECRET_IN_QUERY, SECRET_IN_HEADER, "access_token", "Bearer"):
        assert secret not in written
    lines = [json.loads(line) for line in written.splitlines()]
    (request_line,) = [line for line in lines if line["logger"] == "targetadmin.request"]
    assert request_line["requestId"] == "probe-1"
    assert request_line["status"] == 200
    (access_line,) = [line for line in lines if line["logger"] == "gunicorn.access"]
    assert '"GET /healthz" 200' in access_line["message"]
    assert access_line["message"].endswith(" probe-1")
    assert any(line["logger"] == "gunicorn.error" for line in lines)
