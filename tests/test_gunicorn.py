"""gunicorn with the repository's gunicorn.conf.py: serves, and logs JSON without secrets."""

from __future__ import annotations

import json
import runpy
import sqlite3
import time
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from gunicorn.config import Config
from gunicorn.ctl.client import ControlClient, ControlClientError

from profiles.api.bodies import READ_BYTES
from tests.gunicorn_server import Server, add_demo_client, chunks, gunicorn, send

CONF = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"
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


# Uploads over a real socket: what gunicorn hands the application -------------------------

MAX_BYTES = 4096
BOUNDARY = "b0undary"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    directory = tmp_path_factory.mktemp("gunicorn")
    with gunicorn(directory, WEB_CONCURRENCY="1", BATCH_MAX_BYTES=str(MAX_BYTES)) as running:
        add_demo_client(directory)
        yield running.port, directory


MULTIPART_HEAD = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="batch"; filename="b.txt"\r\n'
    "Content-Type: text/plain\r\n\r\n"
).encode()


def multipart(content: bytes) -> bytes:
    return MULTIPART_HEAD + content + f"\r\n--{BOUNDARY}--\r\n".encode()


def content_type(multipart_body: bool) -> str:
    if multipart_body:
        return f"multipart/form-data; boundary={BOUNDARY}"
    return "application/x-www-form-urlencoded"


def batch_size(port: int, answer: str) -> str:
    status_url = ElementTree.fromstring(answer).findtext("batchStatus") or ""  # noqa: S314
    assert status_url.startswith(f"http://127.0.0.1:{port}/"), answer
    with urllib.request.urlopen(status_url, timeout=30) as response:  # noqa: S310 - loopback
        return ElementTree.fromstring(response.read()).findtext("batchSize") or ""  # noqa: S314


def stored(directory: Path) -> tuple[int, list[str]]:
    """How many batches the database holds, and the files of the batch directory."""
    with closing(sqlite3.connect(directory / "targetadmin.sqlite3")) as database:
        (count,) = database.execute("SELECT count(*) FROM profiles_batch").fetchone()
    files = sorted(path.name for path in (directory / "batches").glob("*"))
    return count, files


def test_it_accepts_a_chunked_batch_file_raw_or_multipart(server: tuple[int, Path]) -> None:
    port, _ = server
    rows = [f"chunked-{n},value-{n}\n".encode() for n in range(40)]
    raw = [b"batch=pcId,a\n", *rows]
    status, answer = send(
        port,
        "/m2/demo/v2/profile/batchUpdate",
        {"Content-Type": "application/x-www-form-urlencoded", "Transfer-Encoding": "chunked"},
        chunks(*raw),
    )
    assert status == 200, answer
    assert batch_size(port, answer) == "40"
    body = multipart(b"".join(raw))
    status, answer = send(
        port,
        "/m2/demo/v2/profile/batchUpdate",
        {
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Transfer-Encoding": "chunked",
        },
        chunks(body[:50], body[50:51], body[51:500], body[500:]),
    )
    assert status == 200, answer
    assert batch_size(port, answer) == "40"


@pytest.mark.parametrize("multipart_body", [False, True], ids=["raw", "multipart"])
def test_it_refuses_a_chunked_upload_past_the_size_limit_while_it_streams(
    server: tuple[int, Path], multipart_body: bool
) -> None:
    port, directory = server
    before = stored(directory)
    head = MULTIPART_HEAD if multipart_body else b""
    sent = (head + b"batch=pcId,a\n" + b"p1,x\n" * READ_BYTES)[:READ_BYTES]
    # The client announces a chunk twice as long, sends what the server reads at once and
    # waits: the answer comes while the upload is still under way.
    status, answer = send(
        port,
        "/m2/demo/v2/profile/batchUpdate",
        {"Content-Type": content_type(multipart_body), "Transfer-Encoding": "chunked"},
        [b"%x\r\n" % (2 * READ_BYTES), sent],
        hang_up=False,
    )
    assert status == 413, answer
    assert f"The batch file must be smaller than {MAX_BYTES:,} bytes." in answer
    assert stored(directory) == before


@pytest.mark.parametrize("multipart_body", [False, True], ids=["raw", "multipart"])
def test_it_refuses_a_chunked_upload_that_breaks_off_and_stores_nothing(
    server: tuple[int, Path], multipart_body: bool
) -> None:
    port, directory = server
    before = stored(directory)
    content = b"batch=pcId,tier\ncut-1,gold\ncut-2,platinum\n"
    body = multipart(content) if multipart_body else content
    cut = body.index(b"inum")
    # A chunk announced whole, then the client hangs up inside it.
    status, answer = send(
        port,
        "/m2/demo/v2/profile/batchUpdate",
        {"Content-Type": content_type(multipart_body), "Transfer-Encoding": "chunked"},
        [b"%x\r\n" % len(body), body[:cut]],
    )
    assert status == 400, answer
    assert "The upload broke off before its end." in answer
    assert stored(directory) == before


def test_it_refuses_a_multipart_upload_cut_off_before_its_content_length(
    server: tuple[int, Path],
) -> None:
    port, directory = server
    before = stored(directory)
    body = multipart(b"batch=pcId,tier\ncut-1,gold\ncut-2,platinum\n")
    cut = body.index(b"inum")
    status, answer = send(
        port,
        "/m2/demo/v2/profile/batchUpdate",
        {
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Content-Length": str(len(body)),
        },
        [body[:cut]],
    )
    assert status == 400, answer
    assert f"The upload ended after {cut:,} of {len(body):,} bytes it announced." in answer
    assert stored(directory) == before


@pytest.mark.parametrize(("access_log", "built"), [(None, False), ("-", True)])
def test_gunicorn_builds_access_lines_only_while_the_access_log_is_on(
    monkeypatch: pytest.MonkeyPatch, access_log: str | None, built: bool
) -> None:
    # gunicorn builds one for every request whenever logconfig_dict is set, unless told.
    if access_log is None:
        monkeypatch.delenv("GUNICORN_ACCESS_LOG", raising=False)
    else:
        monkeypatch.setenv("GUNICORN_ACCESS_LOG", access_log)
    conf = runpy.run_path(str(CONF))
    cfg = Config()
    for name in ("accesslog", "logconfig_dict"):
        cfg.set(name, conf[name])
    logger = conf["logger_class"].__new__(conf["logger_class"])  # without configuring logging
    logger.cfg = cfg

    assert logger._compute_access_log_enabled() is built


# What gunicorn.conf.py reads from the environment ------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("GUNICORN_THREADS", "four", "GUNICORN_THREADS must be a whole number, not 'four'"),
        ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY must be at least 1, not 0"),
        ("GUNICORN_TIMEOUT", "-1", "GUNICORN_TIMEOUT must be at least 0, not -1"),
        ("GUNICORN_BODY_TIMEOUT", "30s", "GUNICORN_BODY_TIMEOUT must be a number, not '30s'"),
        ("GUNICORN_HEADER_TIMEOUT", "nan", "GUNICORN_HEADER_TIMEOUT must be at least 1, not nan"),
    ],
)
def test_gunicorn_refuses_a_value_it_cannot_read_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured) as refused:
        runpy.run_path(str(CONF))
    assert str(refused.value) == says


def test_gunicorn_and_the_application_log_through_one_configuration() -> None:
    logconfig = runpy.run_path(str(CONF))["logconfig_dict"]
    shared = ("formatters", "filters", "handlers", "root")
    assert {key: logconfig[key] for key in shared} == {key: settings.LOGGING[key] for key in shared}
    assert set(logconfig["loggers"]) == {"gunicorn.error", "gunicorn.access"}


# The control socket -------------------------------------------------------------------------


def master_behind(control_socket: Path) -> int:
    """The pid of the gunicorn master answering on ``control_socket`` (it starts listening
    shortly after the port does)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with ControlClient(str(control_socket), timeout=5) as control:
                return int(control.send_command("show stats")["pid"])
        except ControlClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_two_servers_with_their_own_var_dirs_have_their_own_control_sockets(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    with (
        gunicorn(first, WEB_CONCURRENCY="1") as one,
        gunicorn(second, WEB_CONCURRENCY="1") as other,
    ):
        assert master_behind(first / "gunicorn.ctl") == one.pid
        assert master_behind(second / "gunicorn.ctl") == other.pid
    assert not (first / "gunicorn.ctl").exists()
    assert not (second / "gunicorn.ctl").exists()
