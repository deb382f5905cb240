"""The profile APIs' response envelopes (SPEC section 6), built in one place.

``/m2/...`` endpoints answer XML ``<response>`` documents; ``/rest/v1/profiles/...`` answer
``{"status", "message"}`` JSON; the JSON bulk endpoint answers ``{"error": {...}}``; the
management API answers Adobe's ``{"httpStatus", "requestId", "requestTime", "errors"}``. Views
raise ``ApiError`` and the decorator that owns the endpoint renders it in its envelope.
"""

from __future__ import annotations

from collections.abc import Iterable
from xml.sax.saxutils import escape

from django.http import HttpResponse, JsonResponse
from django.utils import timezone

XML_CONTENT_TYPE = "application/xml; charset=utf-8"


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _DEFAULT_CODES.get(status, "error")
        self.headers = headers or {}


_DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    429: "too_many_requests",
    503: "unavailable",
}


def xml_elements(fields: Iterable[tuple[str, object]]) -> str:
    """``<name>value</name>`` for each field, values escaped; nested lists are raw XML."""
    return "".join(f"<{name}>{escape(str(value))}</{name}>" for name, value in fields)


def xml_response(body: str, status: int = 200) -> HttpResponse:
    return HttpResponse(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<response>{body}</response>',
        status=status,
        content_type=XML_CONTENT_TYPE,
    )


def _with_headers(response: HttpResponse, error: ApiError) -> HttpResponse:
    for name, value in error.headers.items():
        response[name] = value
    return response


def xml_error(error: ApiError) -> HttpResponse:
    body = xml_elements([("success", "false"), ("message", error.message)])
    return _with_headers(xml_response(body, error.status), error)


def rest_error(error: ApiError) -> HttpResponse:
    """The ``/rest/v1/profiles`` shape: ``{"status": <code>, "message": "…"}``."""
    response = JsonResponse({"status": error.status, "message": error.message}, status=error.status)
    return _with_headers(response, error)


def json_api_error(error: ApiError) -> HttpResponse:
    """This project's JSON API shape: ``{"error": {"code": "…", "message": "…"}}``."""
    response = JsonResponse(
        {"error": {"code": error.code, "message": error.message}}, status=error.status
    )
    return _with_headers(response, error)


def adobe_error(error: ApiError, *, request_id: str, content_type: str) -> HttpResponse:
    """Adobe's Admin API shape, used by the token and settings management API (SPEC 7)."""
    body = {
        "httpStatus": error.status,
        "requestId": request_id,
        "requestTime": timezone.now().isoformat(),
        "errors": [{"errorCode": error.code, "message": error.message}],
    }
    response = JsonResponse(body, status=error.status, content_type=content_type)
    return _with_headers(response, error)
