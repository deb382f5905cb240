"""A profile API call as both of its doors see it (docs/operations.md#the-api-path).

A call comes in through Django (a view behind ``profile_api``) or through the fast lane in
front of Django (``profiles.api.lane``), which makes no ``HttpRequest``. Either way its
rules (the client it names, its tokens, the caller's address, its parameters) are read from
the same things: the WSGI environ (a Django request's ``META`` is that environ), the query
string parsed by Django's ``QueryDict``, and the body read by ``profiles.api.bodies``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.handlers.wsgi import get_bytes_from_wsgi
from django.http import HttpRequest, QueryDict
from django.utils.http import parse_header_parameters

from profiles.api import bodies


@dataclass(slots=True)
class ApiCall:
    """What a profile API reads of one call.

    ``environ`` is the WSGI environ; ``method`` and ``path_info`` are as Django reads them
    (upper-case, percent-decoded); ``body`` is what the body is read from
    (``profiles.api.bodies``); ``read_form`` reads the fields of a multipart body, which
    only a Django request parses (the lane leaves such a call to Django). The query string
    is parsed when first asked for, as Django parses it.
    """

    environ: Mapping[str, Any]
    method: str
    path_info: str
    body: bodies.BodySource
    read_query: Callable[[], QueryDict]
    read_form: Callable[[bytes], QueryDict] | None = None

    @classmethod
    def of(cls, request: HttpRequest) -> ApiCall:
        return cls(
            request.META,
            request.method or "",
            request.path_info,
            request,
            lambda: request.GET,
            lambda body: bodies.form(request, body)[0],
        )

    @property
    def query(self) -> QueryDict:
        """The query string's parameters, parsed by Django's ``QueryDict`` when first asked
        for: ``TooManyFieldsSent`` past ``DATA_UPLOAD_MAX_NUMBER_FIELDS``."""
        return self.read_query()

    def form(self, body: bytes) -> QueryDict:
        """The fields of ``body``, a multipart body."""
        if self.read_form is None:
            raise LookupError("Only a Django request parses a multipart body.")
        return self.read_form(body)

    @property
    def content_type(self) -> str:
        """The media type of the body, as Django's ``HttpRequest.content_type``."""
        return parse_header_parameters(self.environ.get("CONTENT_TYPE", ""))[0]

    @property
    def raw_query(self) -> bytes:
        return raw_query(self.environ)


def raw_query(environ: Mapping[str, Any]) -> bytes:
    """The query string's bytes, as Django reads them from the environ."""
    return get_bytes_from_wsgi(environ, "QUERY_STRING", "")  # type: ignore[arg-type]


def query_reader(environ: Mapping[str, Any]) -> Callable[[], QueryDict]:
    """The query string's parameters as ``WSGIRequest.GET`` parses them, once, when asked."""
    parsed: list[QueryDict] = []

    def read() -> QueryDict:
        if not parsed:
            parsed.append(QueryDict(raw_query(environ)))
        return parsed[0]

    return read
