"""The profile APIs' lean path through Django (docs/operations.md#the-api-path).

Scripts call the profile APIs with a token, never with a session, a form or a browser: the
page machinery (sessions, messages, CSRF, sign-in and its lockout, static files, HTML error
pages) has nothing to do for them, yet costs more CPU than the API's own work.
:class:`ApiPathsMiddleware`, first in ``MIDDLEWARE``, hands every request whose path starts
with one of :data:`API_PREFIXES` to a chain of its own, ``API_MIDDLEWARE``:

- the request log (one line per request, as on every path);
- Django's ``SecurityMiddleware`` (HTTPS redirect, HSTS, ``nosniff``, referrer and opener
  policies: the same settings as the pages');
- :class:`ApiHeadersMiddleware`: the ``Host`` check of ``ALLOWED_HOSTS``, and
  ``X-Frame-Options`` and the Content-Security-Policy every answer carries (built once),
  and ``Content-Length``.

Every other path takes the full ``MIDDLEWARE``. On the lean path a URL that names no view is
answered 404 in the envelope of the API its prefix belongs to, not with the HTML page, and a
refusal (4xx) is written once, by the request log, not a second time by ``django.request``;
server errors are still logged with their traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import Resolver404, resolve
from django.utils.csp import CSP, build_policy

from adapters.lean_handler import LeanHandler
from profiles.api.envelopes import json_api_error, rest_error, xml_error
from profiles.api.gate import is_profile_api
from profiles.rules.errors import ErrorCode, ProductError

GetResponse = Callable[[HttpRequest], HttpResponseBase]

# Each prefix with the envelope its endpoints answer in (docs/api.md#error-envelopes).
_ENVELOPES: dict[str, Callable[[ProductError], HttpResponse]] = {
    "/m2/": xml_error,
    "/rest/v1/profiles/": rest_error,
    "/api/v1/": json_api_error,
}
API_PREFIXES = tuple(_ENVELOPES)


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


def not_found(path: str) -> HttpResponse:
    """The 404 of a path under an API prefix that names no endpoint, in that API's envelope."""
    envelope = next(envelope for prefix, envelope in _ENVELOPES.items() if path.startswith(prefix))
    return envelope(ProductError(ErrorCode.NOT_FOUND, "Not found."))


class ApiPathsMiddleware:
    """First in ``MIDDLEWARE``: the profile APIs take ``API_MIDDLEWARE``, the rest go on.

    A path under an API prefix is resolved here, once: it takes the lean path when its view
    is a profile API's (``is_profile_api``), or when it names no view at all (a 404 in the
    API's envelope). Another view under such a prefix (the management API of a client coded
    ``m2``, at ``/m2/target/...``) takes the full middleware like any page.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.api = LeanHandler(settings.API_MIDDLEWARE, not_found)

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        path = request.path_info
        if path.startswith(API_PREFIXES):
            try:
                match = resolve(path)
            except Resolver404:
                return self.api(request)
            if is_profile_api(match.func):
                request.resolver_match = match
                return self.api(request)
        return self.get_response(request)


class ApiHeadersMiddleware:
    """The ``Host`` check, ``X-Frame-Options``, the Content-Security-Policy and
    ``Content-Length`` of API answers.

    The pages' middleware does the same through ``CommonMiddleware`` (which reads the host
    and sets the length), ``XFrameOptionsMiddleware`` and ``ContentSecurityPolicyMiddleware``. An API answer uses
    no nonce, so its policy is the same for every answer and is built once.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.headers = {"X-Frame-Options": str(settings.X_FRAME_OPTIONS).upper()}
        configs: tuple[tuple[str, Mapping[str, Any]], ...] = (
            (CSP.HEADER_ENFORCE, settings.SECURE_CSP),
            (CSP.HEADER_REPORT_ONLY, settings.SECURE_CSP_REPORT_ONLY),
        )
        for header, config in configs:
            if config:
                self.headers[str(header)] = build_policy(config)

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request.get_host()  # DisallowedHost (400) for a host ALLOWED_HOSTS does not name
        response = self.get_response(request)
        for name, value in self.headers.items():
            if name not in response:
                response[name] = value
        if not response.streaming and "Content-Length" not in response:
            # As CommonMiddleware does on the pages: the answer need not be sent chunked.
            response["Content-Length"] = str(len(response.content))  # type: ignore[attr-defined]
        return response
