"""The profile APIs' fast lane: WSGI middleware in front of Django
(docs/operations.md#the-api-path).

``targetadmin.wsgi.application`` is :class:`FastLane` wrapped around Django's handler. It
recognises the hot calls by method and path, the single update
(``/m2/<client>/profile/update``) and the fetches (``/rest/v1/profiles/<pcId>``,
``/rest/v1/profiles/thirdPartyId/<id>``), and serves them straight from the WSGI environ:
no URL resolver, no ``HttpRequest`` or ``HttpResponse``, no middleware chain, no signals.
Every other request goes to Django unchanged.

Nothing is served differently: the lane calls the same functions as Django's path to those
views, each the one owner of its rule: the request id and log line
(``profiles.edge.request_log``), the ``Host`` check and security headers
(``profiles.edge.security``), the gate (``profiles.api.gate``: client, allowlist, token,
throttle) and the endpoints and envelopes themselves (``profiles.api.profile_views``).

A call the lane cannot answer exactly as Django would goes to Django instead, before the
lane has read anything of it: a path under a script prefix, a ``Host`` that
``ALLOWED_HOSTS`` refuses or plain HTTP under ``SECURE_SSL_REDIRECT`` (Django's own 400 and
redirect), a query string Django refuses to parse, and a multipart body. A server error is
answered by Django's own handler (``response_for_exception``: the ``handler500`` page, the
traceback logged), as on Django's path.

Database connections are kept as Django's request signals keep them: an unusable or
too-old connection is closed when a call starts and when it ends.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.client import responses
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost, TooManyFieldsSent
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIRequest, get_path_info, get_script_name
from django.db import close_old_connections
from django.urls import Resolver404, resolve

from profiles.api import profile_views
from profiles.api.bodies import EnvironBody
from profiles.api.calls import ApiCall, query_reader
from profiles.api.envelopes import Answer
from profiles.api.gate import CallView
from profiles.edge.request_log import (
    REQUEST_ID_HEADER,
    LoggedRequest,
    client_code_of,
    endpoint_of,
    name_client,
)
from profiles.edge.security import ApiHeaders, checked_host, is_secure
from profiles.rules.metrics import Endpoint

type Environ = dict[str, Any]
type StartResponse = Callable[..., Any]
type WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]

# The hot routes, as profiles/urls.py names them and in its order; each with a path Django
# resolves to it, checked when the lane is made (:func:`agreeing_routes`).
ROUTES: tuple[tuple[re.Pattern[str], str, CallView, str], ...] = (
    (
        re.compile(r"/m2/(?P<client>[^/]+)/profile/update"),
        "GET POST",
        profile_views.update,
        "/m2/demo/profile/update",
    ),
    (
        re.compile(r"/rest/v1/profiles/thirdPartyId/(?P<third_party_id>[^/]+)"),
        "GET",
        profile_views.fetch_by_third_party_id,
        "/rest/v1/profiles/thirdPartyId/u-1",
    ),
    (
        re.compile(r"/rest/v1/profiles/(?P<pc_id>[^/]+)"),
        "GET",
        profile_views.fetch_by_pc_id,
        "/rest/v1/profiles/p-1",
    ),
)
PREFIXES = ("/m2/", "/rest/v1/profiles/")

type Route = tuple[re.Pattern[str], frozenset[str], CallView, Endpoint]


def agreeing_routes() -> tuple[Route, ...]:
    """The routes Django's URL configuration also sends to the lane's view (under another
    ``ROOT_URLCONF`` the lane takes only what that configuration agrees with), each with
    the group its requests are counted in (docs/operations.md#metrics)."""
    agreeing = []
    for pattern, methods, view, example in ROUTES:
        try:
            match = resolve(example)
        except Resolver404:
            continue
        if match.func is view:
            agreeing.append((pattern, frozenset(methods.split()), view, endpoint_of(match)))
    return tuple(agreeing)


def status_line(status: int) -> str:
    """The status line Django's WSGI handler writes."""
    return f"{status} {responses.get(status, 'Unknown Status Code')}"


@dataclass(frozen=True, slots=True)
class Taken:
    """A call the lane serves: the view, the URL's values, the client code it names, and
    the group it is counted in."""

    call: ApiCall
    view: CallView
    kwargs: dict[str, str]
    client_code: str | None
    endpoint: Endpoint


class FastLane:
    """The WSGI application: the hot calls served here, every other one by ``django``."""

    def __init__(
        self, django: WsgiApp, *, keep_connections: Callable[[], None] = close_old_connections
    ) -> None:
        self.django = django
        # What Django's request signals do with database connections; Django's test client
        # leaves them open, and so do tests of the lane.
        self.keep_connections = keep_connections
        self.routes = agreeing_routes()
        self.headers = ApiHeaders()
        self.redirects_plain_http = bool(settings.SECURE_SSL_REDIRECT)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        taken = self.take(environ)
        if taken is None:
            return self.django(environ, start_response)
        return self.serve(taken, start_response)

    def take(self, environ: Environ) -> Taken | None:
        """The call, its view and the URL's values, when the lane serves it; else ``None``."""
        if not environ.get("PATH_INFO", "").startswith(PREFIXES) or get_script_name(environ):
            return None
        path = get_path_info(environ)
        method = str(environ["REQUEST_METHOD"]).upper()
        found = next(
            (
                (match, methods, view, endpoint)
                for pattern, methods, view, endpoint in self.routes
                if (match := pattern.fullmatch(path))
            ),
            None,
        )
        if found is None:
            return None
        match, methods, view, endpoint = found
        if method not in methods:
            return None  # Django's path answers the 405, as rarely as it is asked for
        if self.redirects_plain_http and not is_secure(environ):
            return None
        call = ApiCall(environ, method, path, EnvironBody(environ), query_reader(environ))
        if method == "POST" and call.content_type.startswith("multipart/"):
            return None  # only a Django request parses a multipart body
        kwargs = match.groupdict()
        try:
            checked_host(environ)
            # What the request line names; Django's path would refuse a query string it
            # cannot parse here, before the view.
            code = client_code_of(kwargs.get("client"), call.read_query)
        except (DisallowedHost, TooManyFieldsSent):
            return None
        return Taken(call, view, kwargs, code, endpoint)

    def serve(self, taken: Taken, start_response: StartResponse) -> list[bytes]:
        call = taken.call
        environ: Environ = call.environ  # type: ignore[assignment]
        logged = LoggedRequest(environ)
        self.keep_connections()
        try:
            name_client(environ, taken.client_code)
            try:
                answer = taken.view.answer(call, **taken.kwargs)
            except Exception as failure:
                answer = self.server_error(environ, failure)
            present = {name.lower() for name, _ in answer.headers}
            headers = [("Content-Type", answer.content_type), *answer.headers]
            headers += [
                header for header in self.headers.of(environ) if header[0].lower() not in present
            ]
            if "content-length" not in present:
                headers.append(("Content-Length", str(len(answer.body))))
            headers.append((REQUEST_ID_HEADER, logged.request_id))
            logged.write(call.path_info, answer.status, taken.endpoint)
            start_response(status_line(answer.status), headers)
            return [answer.body]
        finally:
            logged.close()
            self.keep_connections()

    @staticmethod
    def server_error(environ: Environ, failure: Exception) -> Answer:
        """Django's answer to a view's exception, called while it is handled:
        ``handler500``'s page, logged with its traceback by ``django.request``."""
        response = response_for_exception(WSGIRequest(environ), failure)
        headers = tuple((name, value) for name, value in response.items() if name != "Content-Type")
        return Answer(response.status_code, response["Content-Type"], response.content, headers)
