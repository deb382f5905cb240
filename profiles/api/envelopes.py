"""The wire envelopes of every API, and the one place a ``ProductError`` becomes a response.

``/m2/...`` endpoints answer XML ``<response>`` documents; ``/rest/v1/profiles/...`` answer
``{"status", "message"}`` JSON; the JSON bulk endpoint answers ``{"error": {...}}``; the
management API answers Adobe's ``{"httpStatus", "requestId", "requestTime", "errors"}``
(docs/api.md#error-envelopes, docs/management-api.md#error-shape). The HTTP status of each
error code is :data:`STATUS`, listed in docs/api.md#error-codes.

The profile APIs' answers are built as an :class:`Answer` (status, headers, body bytes):
the Django views turn one into an ``HttpResponse`` (:func:`as_response`), the fast lane
(docs/operations.md#the-api-path) writes it to the connection as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse, JsonResponse
from django.utils import timezone

from profiles.rules.errors import ADOBE_SPELLING, ROW_CODES, ErrorCode, ProductError

XML_CONTENT_TYPE = "application/xml; charset=utf-8"
JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole answer: its status, its content type, any other headers, and its body."""

    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def as_response(answer: Answer) -> HttpResponse:
    response = HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)
    for name, value in answer.headers:
        response[name] = value
    return response


# What ``JsonResponse`` writes, built once.
_encode_json = DjangoJSONEncoder().encode


def json_answer(document: Mapping[str, Any], status: int = 200) -> Answer:
    """``document`` as ``JsonResponse`` would write it."""
    return Answer(status, JSON_CONTENT_TYPE, _encode_json(document).encode())


STATUS: Mapping[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NETWORK_NOT_ALLOWED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.NOT_ACCEPTABLE: 406,
    ErrorCode.REQUEST_TIMEOUT: 408,
    ErrorCode.LENGTH_REQUIRED: 411,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.TOO_MANY_REQUESTS: 429,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.BAD_IDEMPOTENCY_KEY: 400,
    ErrorCode.BAD_JSON: 400,
    ErrorCode.INVALID: 400,
    ErrorCode.DATABASE_BUSY: 503,
    ErrorCode.INSUFFICIENT_STORAGE: 507,
    ErrorCode.AUTHENTICATION_REQUIRED: 401,
    ErrorCode.AUTHENTICATION_FAILED: 401,
    ErrorCode.AUTHENTICATION_MALFORMED: 401,
    ErrorCode.AUTHENTICATION_UNSUPPORTED: 401,
    ErrorCode.AUTHENTICATION_LOCKED_OUT: 429,
    ErrorCode.CSRF_FAILED: 403,
    ErrorCode.CLIENT_NOT_FOUND: 404,
    ErrorCode.TOKEN_NOT_FOUND: 404,
    ErrorCode.PREVIOUS_TOKEN_NOT_FOUND: 404,
    ErrorCode.TOKEN_ENCRYPTION_KEY_MISSING: 503,
    ErrorCode.TOKEN_LIMIT: 409,
    ErrorCode.TOKEN_SCOPE: 403,
    # A single update refused for its one row: the row's problem is the request's.
    **dict.fromkeys(ROW_CODES, 400),
    ErrorCode.PROFILE_TOO_LARGE: 413,
}


def status_of(error: ProductError) -> int:
    return STATUS[error.code]


# What XML 1.0 cannot carry at all, escaped or not: the C0 controls but tab, LF and CR, lone
# surrogates, U+FFFE and U+FFFF (https://www.w3.org/TR/xml/#charsets).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: object) -> str:
    """``value`` as XML character data: escaped, and what XML cannot carry shown as U+FFFD.

    Ids and messages echo what was uploaded, control characters and all; the document must
    parse whatever they hold. A CR is written as a reference, which a parser keeps (it turns
    a bare one into LF).
    """
    return _NOT_XML.sub("\ufffd", escape(str(value), {"\r": "&#13;"}))


def xml_elements(fields: Iterable[tuple[str, object]]) -> str:
    """``<name>value</name>`` for each field, values as :func:`xml_text`."""
    return "".join(f"<{name}>{xml_text(value)}</{name}>" for name, value in fields)


def xml_answer(body: str, status: int = 200) -> Answer:
    document = f'<?xml version="1.0" encoding="UTF-8"?>\n<response>{body}</response>'
    return Answer(status, XML_CONTENT_TYPE, document.encode())


def xml_response(body: str, status: int = 200) -> HttpResponse:
    return as_response(xml_answer(body, status))


def _headers_of(error: ProductError) -> tuple[tuple[str, str], ...]:
    headers = tuple(error.headers.items())
    if error.retry_after is not None:
        headers += (("Retry-After", str(error.retry_after)),)
    return headers


def xml_error(error: ProductError) -> Answer:
    body = xml_elements([("success", "false"), ("message", error.message)])
    answer = xml_answer(body, status_of(error))
    return Answer(answer.status, answer.content_type, answer.body, _headers_of(error))


def rest_error(error: ProductError) -> Answer:
    """The ``/rest/v1/profiles`` shape: ``{"status": <code>, "message": "…"}``."""
    status = status_of(error)
    answer = json_answer({"status": status, "message": error.message}, status)
    return Answer(status, answer.content_type, answer.body, _headers_of(error))


def json_api_error(error: ProductError) -> Answer:
    """This project's JSON API shape: ``{"error": {"code": "…", "message": "…"}}``."""
    status = status_of(error)
    answer = json_answer({"error": {"code": error.code.value, "message": error.message}}, status)
    return Answer(status, answer.content_type, answer.body, _headers_of(error))


def adobe_error(error: ProductError, *, request_id: str, content_type: str) -> HttpResponse:
    """Adobe's Admin API shape, used by the management API (docs/management-api.md)."""
    status = status_of(error)
    body = {
        "httpStatus": status,
        "requestId": request_id,
        "requestTime": timezone.now().isoformat(),
        "errors": [
            {
                "errorCode": ADOBE_SPELLING.get(error.code, error.code.value),
                "message": error.message,
            }
        ],
    }
    response = JsonResponse(body, status=status, content_type=content_type)
    for name, value in _headers_of(error):
        response[name] = value
    return response
