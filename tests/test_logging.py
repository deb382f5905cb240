"""Logs: one JSON object per line, tied to a request id and client, free of secrets.

Every test in the suite also runs under ``no_secret_is_logged`` (conftest), which fails it
when a token plaintext or password it used reaches a log line.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client as HttpClient

from profiles.edge.request_log import JsonFormatter
from profiles.models import Client
from tests.profile_api import issue_token, require_authentication
from tests.support import signed_in


class Log:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def clear(self) -> None:
        self.stream.seek(0)
        self.stream.truncate()

    def requests(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["logger"] == "targetadmin.request"]


@pytest.fixture
def log() -> Iterator[Log]:
    """What the application writes while the test runs, through the handler LOGGING configures."""
    captured = Log()
    (console,) = [
        handler
        for handler in logging.getLogger().handlers
        if isinstance(handler, logging.StreamHandler)
        and isinstance(handler.formatter, JsonFormatter)
    ]
    previous = console.setStream(captured.stream)
    try:
        yield captured
    finally:
        console.setStream(previous)


def test_it_writes_one_json_line_per_request_with_its_id_client_and_status(
    demo: Client, client: HttpClient, log: Log
) -> None:
    response = client.get("/rest/v1/profiles/p-404?client=demo")
    assert response.status_code == 404
    (line,) = log.requests()
    assert line["requestId"] == response["X-Request-ID"]
    assert len(line["requestId"]) == 32
    assert line["client"] == "demo"
    assert line["status"] == 404
    assert line["method"] == "GET"
    assert line["path"] == "/rest/v1/profiles/p-404"
    assert line["durationMs"] >= 0


def test_it_names_the_client_from_the_path(demo: Client, client: HttpClient, log: Log) -> None:
    client.post("/m2/demo/profile/update?mbox3rdPartyId=u-1&profile.tier=gold")
    (line,) = log.requests()
    assert line["client"] == "demo"
    assert line["path"] == "/m2/demo/profile/update"


def test_it_names_no_client_when_the_url_names_none(db: None, client: HttpClient, log: Log) -> None:
    client.get("/no-such-page")
    (line,) = log.requests()
    assert "client" not in line
    assert line["status"] == 404


def test_it_keeps_and_echoes_the_callers_request_id(
    demo: Client, client: HttpClient, log: Log
) -> None:
    response = client.get("/rest/v1/profiles/p-404?client=demo", HTTP_X_REQUEST_ID="lb-7f3a.19")
    assert response["X-Request-ID"] == "lb-7f3a.19"
    assert log.requests()[0]["requestId"] == "lb-7f3a.19"


@pytest.mark.parametrize("hostile", ['x"}\n{"level": "CRITICAL', "a" * 129, "spaced id"])
def test_it_replaces_a_request_id_that_is_not_sane(
    demo: Client, client: HttpClient, log: Log, hostile: str
) -> None:
    response = client.get("/rest/v1/profiles/p-404?client=demo", HTTP_X_REQUEST_ID=hostile)
    assert response["X-Request-ID"] != hostile
    assert len(response["X-Request-ID"]) == 32
    assert all(line["requestId"] == response["X-Request-ID"] for line in log.lines)


def test_it_ties_every_line_written_during_a_request_to_it(
    demo: Client, client: HttpClient, log: Log
) -> None:
    require_authentication(demo)
    response = client.get("/rest/v1/profiles/p-1?client=demo")
    assert response.status_code == 401
    refusal = next(line for line in log.lines if line["logger"] == "profiles.api.gate")
    assert refusal["requestId"] == response["X-Request-ID"]
    assert refusal["client"] == "demo"
    assert refusal["level"] == "WARNING"


def test_it_never_writes_the_query_string_where_a_careless_caller_puts_a_token(
    demo: Client, client: HttpClient, log: Log
) -> None:
    require_authentication(demo)
    token = issue_token(demo)
    response = client.get(f"/rest/v1/profiles/p-1?client=demo&access_token={token}")
    assert response.status_code == 401
    written = log.stream.getvalue()
    assert token not in written
    assert "access_token" not in written
    assert log.requests()[0]["path"] == "/rest/v1/profiles/p-1"


def test_it_writes_only_the_last_four_characters_of_anything_token_shaped(log: Log) -> None:
    token = "tpa_" + "Zq8" * 16 + "x1"
    logging.getLogger("profiles").error("a careless line with %s in it", token)
    (line,) = log.lines
    assert token not in json.dumps(line)
    assert line["message"] == f"a careless line with tpa_…{token[-4:]} in it"


def test_it_writes_exceptions_inside_the_json_line(log: Log) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("profiles").exception("failed")
    (line,) = log.lines
    assert line["message"] == "failed"
    assert "ValueError: boom" in line["exception"]


def test_it_gives_the_management_api_envelope_the_logged_request_id(
    demo: Client, client: HttpClient, log: Log
) -> None:
    response = client.get("/demo/target/clients/settings", HTTP_X_REQUEST_ID="support-42")
    assert response.status_code == 401
    assert response.json()["requestId"] == "support-42"
    (line,) = log.requests()
    assert line["requestId"] == "support-42"
    assert line["client"] == "demo"


# Routine refusals: one concise line each, never a traceback


def refusal_lines(log: Log) -> list[dict[str, Any]]:
    return [line for line in log.lines if line["logger"] != "targetadmin.request"]


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "x" * 5000, "a b"])
def test_it_writes_one_warning_without_a_traceback_for_a_host_it_does_not_serve(
    db: None, client: HttpClient, log: Log, host: str
) -> None:
    response = client.get("/", HTTP_HOST=host)
    assert response.status_code == 400
    (line,) = refusal_lines(log)
    assert line["logger"] == "django.security.DisallowedHost"
    assert line["level"] == "WARNING"
    assert "exception" not in line
    assert len(line["message"]) <= 300
    assert "Traceback" not in log.stream.getvalue()
    (request,) = log.requests()
    assert request["status"] == 400


def test_it_writes_one_line_without_a_traceback_for_a_page_a_role_may_not_see(
    bob: User, log: Log
) -> None:
    editor = signed_in(bob)
    log.clear()
    response = editor.get("/setup/demo/implementation/")
    assert response.status_code == 403
    (line,) = refusal_lines(log)
    assert line["logger"] == "django.request"
    assert line["level"] in {"INFO", "WARNING"}
    assert line["message"] == "Forbidden (Permission denied): /setup/demo/implementation/"
    assert "exception" not in line
    assert "Traceback" not in log.stream.getvalue()


def test_it_still_writes_the_traceback_of_a_server_error(log: Log) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("django.request").error(
            "Internal Server Error: /x", exc_info=True, extra={"status_code": 500}
        )
    (line,) = log.lines
    assert line["level"] == "ERROR"
    assert "ValueError: boom" in line["exception"]
