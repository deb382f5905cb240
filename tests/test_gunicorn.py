"""gunicorn with the repository's gunicorn.conf.py: serves, and logs JSON without secrets."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from tests.gunicorn_server import Server, gunicorn

SECRET_IN_QUERY = "tpa_" + "Q7" * 24 + "z"
SECRET_IN_HEADER = "tpa_" + "H3" * 24 + "y"


def get_healthz(server: Server) -> None:
    request = urllib.request.Request(  # noqa: S310 - loopback
        server.url(f"/healthz?access_token={SECRET_IN_QUERY}"),
        headers={"Authorization": f"Bearer {SECRET_IN_HEADER}", "X-Request-ID": "probe-1"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        assert response.status == 200
        assert response.headers["X-Request-ID"] == "probe-1"


def logged_lines(server: Server) -> list[dict[str, Any]]:
    written = server.log_path.read_text()
    for secret in (SECRET_IN_QUERY, SECRET_IN_HEADER, "access_token", "Bearer"):
        assert secret not in written
    return [json.loads(line) for line in written.splitlines()]


def test_it_serves_requests_and_logs_json_lines_without_secrets(tmp_path: Path) -> None:
    with gunicorn(tmp_path, WEB_CONCURRENCY="1", GUNICORN_ACCESS_LOG="-") as server:
        get_healthz(server)

    lines = logged_lines(server)
    (request_line,) = [line for line in lines if line["logger"] == "targetadmin.request"]
    assert request_line["requestId"] == "probe-1"
    assert request_line["status"] == 200
    (access_line,) = [line for line in lines if line["logger"] == "gunicorn.access"]
    assert '"GET /healthz" 200' in access_line["message"]
    assert access_line["message"].endswith(" probe-1")
    assert any(line["logger"] == "gunicorn.error" for line in lines)


def test_gunicorns_access_log_is_off_unless_GUNICORN_ACCESS_LOG_turns_it_on(
    tmp_path: Path,
) -> None:
    # The application's own request line is the access log; gunicorn's would repeat it.
    with gunicorn(tmp_path, WEB_CONCURRENCY="1") as server:
        get_healthz(server)

    lines = logged_lines(server)
    (request_line,) = [line for line in lines if line["logger"] == "targetadmin.request"]
    assert request_line["requestId"] == "probe-1"
    assert not [line for line in lines if line["logger"] == "gunicorn.access"]
    assert any(line["logger"] == "gunicorn.error" for line in lines)
