"""deploy/nginx/targetadmin.conf under a real nginx: what clients send gets through, and slow
clients wait in nginx, not in gunicorn.

nginx runs as whoever runs the tests (one process, its files in a temporary directory), on
loopback ports; the tests are skipped where nginx is not installed (.ci/run installs it).
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.gunicorn_server import (
    ROOT,
    Server,
    add_demo_client,
    free_port,
    gunicorn,
    wait_until_listening,
)
from tests.slow_clients import (
    HEALTHZ_SECONDS,
    attackers,
    healthz_seconds_under_attack,
    trickle_a_body,
    trickle_header_lines,
)

NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (Debian: apt-get install nginx)"
)

SITE = ROOT / "deploy" / "nginx" / "targetadmin.conf"
# The shipped site inside the least a main configuration needs; every path is the test's.
MAIN = """
daemon off;
# One process, as whoever runs the tests: no worker process switching to another user.
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/targetadmin.conf;
}}
"""
MB = 1024 * 1024


def replaced_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{SITE.name} should hold {old!r} once"
    return text.replace(old, new)


@contextmanager
def nginx(directory: Path, upstream_port: int) -> Iterator[int]:
    """nginx with the shipped site in front of ``upstream_port``; yields its own port."""
    port = free_port()
    site = replaced_once(
        SITE.read_text(), "server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};"
    )
    site = replaced_once(
        site, "listen 80 default_server;", f"listen 127.0.0.1:{port} default_server;"
    )
    directory.mkdir()
    (directory / "targetadmin.conf").write_text(site)
    (directory / "nginx.conf").write_text(MAIN.format(dir=directory))
    assert NGINX is not None
    command = [
        NGINX,
        "-p",
        str(directory),
        "-c",
        str(directory / "nginx.conf"),
        "-e",
        str(directory / "error.log"),
    ]
    with (directory / "nginx.out").open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)  # noqa: S603
        try:
            wait_until_listening(port, process)
            yield port
        finally:
            process.terminate()
            process.wait(timeout=30)


class Echo(BaseHTTPRequestHandler):
    """An upstream that answers with what reached it: path, headers (names in lower case)
    and body length."""

    def do_GET(self) -> None:
        self.echo()

    def do_POST(self) -> None:
        self.echo()

    def echo(self) -> None:
        received = 0
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining:
            chunk = self.rfile.read(min(remaining, MB))
            received += len(chunk)
            remaining -= len(chunk)
        answer = json.dumps(
            {
                "path": self.path,
                "headers": {name.lower(): value for name, value in self.headers.items()},
                "bodyBytes": received,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def echo_behind_nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    serving = threading.Thread(target=upstream.serve_forever, daemon=True)
    serving.start()
    try:
        with nginx(tmp_path_factory.mktemp("echo") / "nginx", upstream.server_address[1]) as port:
            yield port
    finally:
        upstream.shutdown()
        upstream.server_close()


def through(request: urllib.request.Request) -> dict[str, Any]:
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        assert response.status == 200
        echoed: dict[str, Any] = json.load(response)
    return echoed


def test_the_legacy_access_token_header_gets_through_with_its_underscore(
    echo_behind_nginx: int,
) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{echo_behind_nginx}/m2/demo/profile/update",
        headers={"access_token": "tpa_legacy"},
    )
    assert through(request)["headers"]["access_token"] == "tpa_legacy"


def test_a_client_cannot_write_the_forwarding_headers_it_passes_on(
    echo_behind_nginx: int,
) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{echo_behind_nginx}/m2/demo/profile/update",
        headers={
            "X-Forwarded-For": "10.20.30.6",
            "X_Forwarded_For": "10.20.30.5",
            "X-Forwarded_For": "10.20.30.7",
            "X_Forwarded_Proto": "https",
            "access_token": "tpa_legacy",
        },
    )
    headers = through(request)["headers"]
    # What the client wrote stays on the left; nginx's own entry, the right-most, is the
    # address the connection came from.
    assert headers["x-forwarded-for"] == "10.20.30.6, 127.0.0.1"
    assert [name for name in headers if "_" in name] == ["access_token"]


def test_an_8_kb_query_string_gets_through_whole(echo_behind_nginx: int) -> None:
    path = "/m2/demo/profile/update?mbox3rdPartyId=a&profile.x=" + "y" * (8 * 1024)
    request = urllib.request.Request(f"http://127.0.0.1:{echo_behind_nginx}{path}")
    assert through(request)["path"] == path


def test_the_host_name_the_client_asked_for_gets_through_with_its_port(
    echo_behind_nginx: int,
) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{echo_behind_nginx}/healthz")
    assert through(request)["headers"]["host"] == (f"127.0.0.1:{echo_behind_nginx}")


def test_a_50_mb_batch_file_gets_through_whole_with_its_length(echo_behind_nginx: int) -> None:
    body = b"pcId,a\n" + b"x" * (50 * MB - 8) + b"\n"
    request = urllib.request.Request(
        f"http://127.0.0.1:{echo_behind_nginx}/m2/demo/v2/profile/batchUpdate",
        data=body,
        headers={"Content-Type": "text/csv"},
    )
    echoed = through(request)
    assert echoed["bodyBytes"] == 50 * MB
    assert echoed["headers"]["content-length"] == str(50 * MB)


def test_a_body_over_51_mb_is_refused_413_before_it_is_sent(echo_behind_nginx: int) -> None:
    with socket.create_connection(("127.0.0.1", echo_behind_nginx)) as connection:
        connection.sendall(
            b"POST /m2/demo/v2/profile/batchUpdate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Length: %d\r\n\r\n" % (51 * MB + 1)
        )
        connection.settimeout(5)
        assert connection.recv(65536).startswith(b"HTTP/1.1 413 ")


@pytest.fixture(scope="module")
def gunicorn_behind_nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The application as deployed: gunicorn with its defaults (2 processes of 4 threads
    here, timeouts 10 s and 30 s) behind nginx, which it names in ``TRUSTED_PROXIES``; the
    ``Server`` is nginx's."""
    directory = tmp_path_factory.mktemp("deployed")
    with (
        gunicorn(
            directory, WEB_CONCURRENCY="2", GUNICORN_THREADS="4", TRUSTED_PROXIES="127.0.0.1/32"
        ) as application,
        nginx(directory / "nginx", application.port) as port,
    ):
        add_demo_client(directory)  # so that uploads to demo are read, not refused 404
        yield Server(port, application.log_path)


def test_fifty_slow_clients_do_not_stop_healthz(gunicorn_behind_nginx: Server) -> None:
    # Half trickle their headers, half their body: more than six times gunicorn's threads,
    # and slow enough that gunicorn's own timeouts never end them during the test.
    healthz = gunicorn_behind_nginx.url("/healthz")
    with (
        attackers(gunicorn_behind_nginx.port, 25, trickle_header_lines),
        attackers(gunicorn_behind_nginx.port, 25, trickle_a_body),
    ):
        seconds = healthz_seconds_under_attack(healthz)
    assert max(seconds) < HEALTHZ_SECONDS, seconds


def logged_caller(server: Server, request_id: str) -> str:
    """The caller's address the request line of ``request_id`` names."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in server.log_path.read_text().splitlines():
            entry = json.loads(line)
            if entry["logger"] == "targetadmin.request" and entry["requestId"] == request_id:
                return str(entry["remoteAddr"])
        time.sleep(0.1)
    raise AssertionError(f"no request line for {request_id}")


def test_a_spoofed_forwarding_header_does_not_change_the_callers_address(
    gunicorn_behind_nginx: Server,
) -> None:
    # The client connects from 127.0.0.2; nginx, on 127.0.0.1, is the one trusted proxy.
    connection = http.client.HTTPConnection(
        "127.0.0.1", gunicorn_behind_nginx.port, timeout=30, source_address=("127.0.0.2", 0)
    )
    connection.putrequest("GET", "/healthz", skip_accept_encoding=True)
    for name, value in [
        ("X-Request-ID", "spoofed-forwarding"),
        ("X-Forwarded-For", "10.20.30.6"),
        ("X_Forwarded_For", "10.20.30.5"),
    ]:
        connection.putheader(name, value)
    connection.endheaders()
    assert connection.getresponse().status == 200
    connection.close()
    assert logged_caller(gunicorn_behind_nginx, "spoofed-forwarding") == "127.0.0.2"
