"""The profile APIs' lean path through Django (docs/operations.md#the-api-path).

Scripts call the profile APIs with a token, never with a session, a form or a browser: the
page machinery (sessions, messages, CSRF, sign-in and its lockout, static files, HTML error
pages) has nothing to do for them, yet costs more CPU than the API's own work.
:class:`ApiPathsMiddleware`, first in ``MIDDLEWARE``, hands every request whose path starts
with one of :data:`API_PREFIXES` to a chain of its own, ``API_MIDDLEWARE``:

- the request log (one line per request, as on every path);
- :class:`ApiHeadersMiddleware`: Django's HTTPS redirect, the ``Host`` check of
  ``ALLOWED_HOSTS``, the security headers every API answer carries
  (``profiles.edge.security``: the same settings as the pages'), and ``Content-Length``.

The hot endpoints (the single update and the fetches) are also served by the fast lane in
front of Django (``profiles.api.lane``) through the same functions; this path serves them
whenever the lane leaves a call to Django, and in Django's test client.

Every other path takes the full ``MIDDLEWARE``. On the lean path a URL that names no view is
answered 404 in the envelope of the API its prefix belongs to, not with the HTML page, and a
refusal (4xx) is written once, by the request log, not a second time by ``django.request``;
server errors are still logged with their traceback.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.middleware.security import SecurityMiddleware
from django.urls import Resolver404, resolve

from adapters.lean_handler import LeanHandler
from profiles.api.envelopes import Answer, as_response, json_api_error, rest_error, xml_error
from profiles.api.gate import is_profile_api
from profiles.edge.security import ApiHeaders, checked_host
from profiles.rules.errors import ErrorCode, ProductError

GetResponse = Callable[[HttpRequest], HttpResponseBase]

# Each prefix with the envelope its endpoints answer in (docs/api.md#error-envelopes).
_ENVELOPES: dict[str, Callable[[ProductError], Answer]] = {
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
    return as_response(envelope(ProductError(ErrorCode.NOT_FOUND, "Not found.")))


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


class ApiHeadersMiddleware(SecurityMiddleware):
    """Django's HTTPS redirect, the ``Host`` check, the security headers and
    ``Content-Length`` of API answers.

    The pages' middleware does the same through ``SecurityMiddleware``, ``CommonMiddleware``
    (which reads the host and sets the length), ``XFrameOptionsMiddleware`` and
    ``ContentSecurityPolicyMiddleware``. The headers are ``profiles.edge.security``'s, which
    the fast lane writes too.
    """

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        self.headers = ApiHeaders()

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        # Django's redirect of plain HTTP under SECURE_SSL_REDIRECT, else the host check:
        # DisallowedHost (400) for a host ALLOWED_HOSTS does not name.
        redirect = self.process_request(request)
        if redirect is None:
            checked_host(request.META)
        response: HttpResponseBase = redirect or self.get_response(request)  # type: ignore[assignment]
        for name, value in self.headers.of(request.META):
            if name not in response:
                response[name] = value
        if not response.streaming and "Content-Length" not in response:
            # As CommonMiddleware does on the pages: the answer need not be sent chunked.
            response["Content-Length"] = str(len(response.content))  # type: ignore[attr-defined]
        return response
