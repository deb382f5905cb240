"""Django's request handler with a middleware list of its own.

Django builds one middleware chain, from ``MIDDLEWARE``, for every request. A front door that
needs less of it (the profile APIs need no sessions, CSRF or messages: profiles/api/paths.py)
hands its requests to a :class:`LeanHandler` built from a shorter list. It takes the
``ResolverMatch`` its caller already found, so the URL is resolved once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.urls import ResolverMatch
from django.utils.module_loading import import_string


class LeanHandler(BaseHandler):
    """Django's request handling with the middleware of ``paths`` instead of ``MIDDLEWARE``.

    Only synchronous middleware. A path that names no view is answered by ``not_found``
    (given the path) instead of Django's HTML 404 page.
    """

    def __init__(self, paths: list[str], not_found: Callable[[str], HttpResponseBase]) -> None:
        self.not_found = not_found
        self._view_middleware: list[Callable[..., HttpResponseBase | None]] = []
        self._template_response_middleware: list[Callable[..., HttpResponseBase]] = []
        self._exception_middleware: list[Callable[..., HttpResponseBase | None]] = []
        handler: Callable[[HttpRequest], Any] = convert_exception_to_response(self._get_response)
        for path in reversed(paths):
            instance = import_string(path)(handler)
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, instance.process_view)
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(instance.process_template_response)
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
        self._middleware_chain = handler

    def resolve_request(self, request: HttpRequest) -> ResolverMatch:
        """The match the caller already found, rather than resolving again."""
        match = getattr(request, "resolver_match", None)
        if isinstance(match, ResolverMatch):
            return match
        return super().resolve_request(request)

    def _get_response(self, request: HttpRequest) -> HttpResponseBase:
        try:
            return super()._get_response(request)  # type: ignore[misc,no-any-return]
        except Http404:
            # No view for the path (views answer their own not-found).
            return self.not_found(request.path_info)

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = self._middleware_chain(request)
        if response.status_code < 500:
            # The request line says it was refused; ``django.request`` need not say it again.
            response._has_been_logged = True  # type: ignore[attr-defined]
        return response
