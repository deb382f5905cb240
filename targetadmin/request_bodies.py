"""Chunked request bodies on the pages' path (docs/api.md#request-bodies).

Django reads a body sent with ``Transfer-Encoding: chunked`` (no Content-Length) as empty,
so a chunked sign-in, settings or admin form would be acted on as if it held no fields.
Browsers never send one. :class:`ChunkedBodiesMiddleware` answers such a request 411 before
any view or the CSRF check reads the form, unless its view reads bodies through
``profiles.api.bodies`` (the management API), which reads chunked ones whole. The profile
APIs take their own path (``profiles.api.paths``) and read theirs there too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from profiles.api import bodies


class ChunkedBodiesMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view: Callable[..., HttpResponseBase],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        if bodies.is_chunked(request) and not bodies.reads_chunked_bodies(view):
            return HttpResponse(
                bodies.CHUNKED_UNREADABLE, status=411, content_type="text/plain; charset=utf-8"
            )
        return None
