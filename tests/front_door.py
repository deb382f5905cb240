"""Calls through the real front door: ``targetadmin.wsgi.application``, the fast lane in
front of Django (docs/operations.md#the-api-path).

Django's test client hands its requests to Django's handler and so skips the lane.
:func:`through_the_front_door` makes every test client (the ``client`` fixture and every
``django.test.Client()``) send its requests through a :class:`FastLane` first: what the
lane serves it serves, as raw WSGI status, headers and body turned into an ``HttpResponse``
for the test to read; what it leaves goes on to Django as before. A suite runs through both
doors with ``pytestmark = pytest.mark.usefixtures("both_doors")``.

As Django's test client does, the lane run by a test keeps the test's database connection
(and its transaction) open rather than closing it between calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.test.client import ClientHandler

from profiles.api.lane import FastLane


def raw_wsgi(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status line, headers and body of ``app``'s answer to ``environ``, as a server gets them."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started[:] = [status, headers]

    chunks: Iterable[bytes] = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return started[0], started[1], body


def lane_for_tests(django: Any) -> FastLane:
    """A lane built from the settings as they are now, keeping the test's connection."""
    return FastLane(django, keep_connections=lambda: None)


class KeptConnections:
    """Django's WSGI handler with its request signals not closing the test's connection, as
    Django's test client runs it."""

    def __init__(self) -> None:
        self.handler = WSGIHandler()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            response = self.handler(environ, start_response)
            body = b"".join(response)
            response.close()
            return [body]
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)


def front_door(handler: ClientHandler, environ: dict[str, Any]) -> HttpResponseBase:
    """``ClientHandler.__call__`` with the lane in front of it."""
    passed_on: list[HttpResponseBase] = []

    def django(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        passed_on.append(_DJANGO_DOOR(handler, environ))
        return []

    started: list[Any] = []
    body = b"".join(
        lane_for_tests(django)(
            environ, lambda *status_and_headers: started.extend(status_and_headers)
        )
    )
    if passed_on:
        return passed_on[0]
    status, headers = started[:2]
    code, _, reason = status.partition(" ")
    response = HttpResponse(body, status=int(code), reason=reason)
    del response["Content-Type"]
    for name, value in headers:
        response[name] = value
    response.served_by_lane = True  # type: ignore[attr-defined]
    response.wsgi_request = WSGIRequest(environ)  # type: ignore[attr-defined]
    return response


_DJANGO_DOOR = ClientHandler.__call__


@pytest.fixture
def through_the_front_door(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ClientHandler, "__call__", front_door)


@pytest.fixture(params=["django", "front door"])
def both_doors(request: pytest.FixtureRequest) -> str:
    """Runs a test once through Django's test client and once through the front door."""
    if request.param == "front door":
        request.getfixturevalue("through_the_front_door")
    return str(request.param)
