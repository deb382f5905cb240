"""Logs as one JSON object per line, each tied to the request that caused it.

:class:`LoggedRequest` gives every request an id (the caller's ``X-Request-ID`` when it is
a sane one, else a new one), which the answer echoes, and writes one line per request:
method, path without the query string, client code when the URL names one, status and
duration. Django's middleware (:class:`RequestLogMiddleware`) and the profile APIs' fast
lane (docs/operations.md#the-api-path) both use it. :class:`JsonFormatter` adds the request id and client code to every
other line written while the request runs.

:class:`ConciseRefusals` keeps a refused request to one short line: Django writes a 4xx it
turned from an exception (a ``Host`` not allowed, a page a role may not see) with the
exception's traceback, and a bad ``Host`` at ERROR, so anyone could flood the log with them.

Secrets stay out: the query string (where a careless caller may put a token), headers and
bodies are never logged, and as a last guard anything shaped like a profile token is
replaced by its last four characters before a line is written.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import ResolverMatch

from profiles.access.addresses import address_of
from profiles.rules import metrics
from profiles.tokens import secret

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_META = "HTTP_X_REQUEST_ID"

_META_REQUEST_ID = "targetadmin.request_id"
_META_CLIENT = "targetadmin.client"

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_client_code: ContextVar[str | None] = ContextVar("client_code", default=None)

# Ids from a load balancer or caller: letters, digits and a few separators, 128 at most,
# so a hostile header cannot forge log structure or flood the line.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
_TOKEN_SHAPED = re.compile(re.escape(secret.PREFIX) + r"[0-9A-Za-z]{6,}")

# Attributes a log call may pass in ``extra`` and the JSON keys they are written under.
_FIELDS = {
    "request_id": "requestId",
    "client": "client",
    "method": "method",
    "path": "path",
    "status": "status",
    "duration_ms": "durationMs",
    "remote_addr": "remoteAddr",
}

request_logger = logging.getLogger("targetadmin.request")


# The longest message a refusal line keeps: a hostile Host header may be kilobytes long.
REFUSAL_MESSAGE_LIMIT = 300


class ConciseRefusals(logging.Filter):
    """A 4xx answer is the caller's mistake, not the server's: WARNING at most, no traceback.

    Django's ``log_response`` tags its lines with the answer's ``status_code``; every such
    line about a 4xx (``django.request``'s "Forbidden (Permission denied)", the
    ``django.security.*`` lines of a bad ``Host`` or another suspicious request) keeps its
    logger and message, capped at :data:`REFUSAL_MESSAGE_LIMIT` characters, and loses its
    traceback; one above WARNING comes down to WARNING. A 5xx keeps everything.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if not (isinstance(status, int) and 400 <= status < 500):
            return True
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = record.stack_info = None
        message = record.getMessage()
        if len(message) > REFUSAL_MESSAGE_LIMIT:
            message = f"{message[: REFUSAL_MESSAGE_LIMIT - 1]}…"
        record.msg, record.args = message, None
        return True


def _redact(match: re.Match[str]) -> str:
    return f"{secret.PREFIX}…{match.group()[-4:]}"


# Built once: ``json.dumps`` with these options builds a new encoder on every call.
_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "requestId": _request_id.get(),
            "client": _client_code.get(),
        }
        # Django writes its "Not Found"-style lines after the middleware has returned; they
        # carry the request itself, which remembers its id and client.
        request = getattr(record, "request", None)
        if isinstance(request, HttpRequest):
            entry["requestId"] = entry["requestId"] or request.META.get(_META_REQUEST_ID)
            entry["client"] = entry["client"] or request.META.get(_META_CLIENT)
        for attribute, key in _FIELDS.items():
            value = getattr(record, attribute, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        line = _encode({key: value for key, value in entry.items() if value is not None})
        return _TOKEN_SHAPED.sub(_redact, line) if secret.PREFIX in line else line


def current_request_id() -> str | None:
    """The id of the request being served, as its log lines and ``X-Request-ID`` carry it."""
    return _request_id.get()


def client_code_of(from_path: object, query: Callable[[], Mapping[str, str]]) -> str | None:
    """The client code the URL names: a ``client`` path segment or query parameter (the
    query string is parsed only when there is no segment)."""
    code = from_path if isinstance(from_path, str) else query().get("client")
    return code[:64] if code else None


def name_client(environ: dict[str, Any], code: str | None) -> None:
    """Known once the URL is resolved, so every line the view writes carries it too."""
    environ[_META_CLIENT] = code
    _client_code.set(code)


def request_record(
    environ: Mapping[str, Any], path: str, status: int, started: float
) -> logging.LogRecord:
    """The request line's record, as ``request_logger.info`` would make it.

    Made directly: ``Logger.info`` would also look up the caller's file and line for every
    request, which no line shows.
    """
    method = str(environ["REQUEST_METHOD"]).upper()
    record = logging.LogRecord(
        request_logger.name, logging.INFO, __file__, 0, "%s %s %s", (method, path, status), None
    )
    record.method = method
    record.path = path
    record.status = status
    record.duration_ms = round((time.perf_counter() - started) * 1000, 1)
    record.remote_addr = address_of(environ)
    return record


class LoggedRequest:
    """One request as the log knows it, whichever door it takes: its id (the caller's
    ``X-Request-ID`` when it is a sane one, else a new one), the context every line written
    meanwhile carries, and its request line.

    Made when the request comes in; :meth:`write` once its status is known; :meth:`close`
    in every case.
    """

    __slots__ = ("_context", "environ", "request_id", "started")

    def __init__(self, environ: dict[str, Any]) -> None:
        incoming = environ.get(_REQUEST_ID_META, "")
        sane = incoming and _SANE_REQUEST_ID.fullmatch(incoming)
        self.request_id: str = incoming if sane else os.urandom(16).hex()
        self.environ = environ
        environ[_META_REQUEST_ID] = self.request_id
        self._context = (_request_id.set(self.request_id), _client_code.set(None))
        self.started = time.perf_counter()

    def write(self, path: str, status: int, endpoint: metrics.Endpoint) -> None:
        """The request line, and the request counted in ``endpoint``'s group
        (docs/operations.md#metrics)."""
        metrics.count_request(endpoint, status, self.started)
        if request_logger.isEnabledFor(logging.INFO):
            request_logger.handle(request_record(self.environ, path, status, self.started))

    def close(self) -> None:
        _request_id.reset(self._context[0])
        _client_code.reset(self._context[1])


def endpoint_of(match: ResolverMatch | None) -> metrics.Endpoint:
    """The group a request Django served is counted in, by the view its URL named."""
    if match is None:
        return metrics.Endpoint.OTHER
    named = metrics.ENDPOINTS_BY_URL_NAME.get(match.url_name or "")
    if named is not None:
        return named
    if metrics.MANAGEMENT_NAMESPACE in match.namespaces:
        return metrics.Endpoint.MANAGEMENT
    return metrics.Endpoint.PAGES


class RequestLogMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        logged = LoggedRequest(request.META)
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = logged.request_id
            logged.write(request.path, response.status_code, endpoint_of(request.resolver_match))
            return response
        finally:
            logged.close()

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponse],
        view_args: tuple[object, ...],
        view_kwargs: dict[str, object],
    ) -> None:
        from_path = view_kwargs.get("client", view_kwargs.get("client_code"))
        name_client(request.META, client_code_of(from_path, lambda: request.GET))
