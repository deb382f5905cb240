"""One decorator owns every management API answer: access, media types and errors."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_exempt

from profiles.access.actors import Actor
from profiles.access.addresses import caller_address
from profiles.access.models import Client
from profiles.api import bodies, json_body
from profiles.api.envelopes import adobe_error
from profiles.api.management import auth
from profiles.edge.request_log import current_request_id
from profiles.rules import faults
from profiles.rules.errors import ErrorCode, ProductError

# Adobe's own type first: it is what a caller that accepts anything gets.
MEDIA_TYPES = ("application/vnd.adobe.target.v1+json", "application/json")
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


@dataclass(frozen=True)
class Call:
    """An authenticated, authorised call: who is asking, from where, for which client."""

    request: HttpRequest
    client: Client
    actor: Actor

    @functools.cached_property
    def body(self) -> bytes:
        """The request's body, read once, of at most ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes."""
        return bodies.read_body(
            self.request,
            max_bytes=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
            too_large=body_too_large,
        )

    @property
    def may_see_secrets(self) -> bool:
        """Whether a secret may go into the answer: always for HTTP Basic, for the session
        only from a page of this site (docs/management-api.md#authentication-and-access)."""
        return auth.by_basic(self.request) or auth.from_this_site(self.request)


def body_too_large() -> ProductError:
    return ProductError(ErrorCode.TOO_LARGE, "The body is too large.")


Answer = tuple[int, dict[str, Any]]
NO_CONTENT = 204  # answered without a body
Handler = Callable[..., Answer]  # handler(call, **the URL's other values)


def json_object(call: Call) -> dict[str, Any]:
    """The request's body as a JSON object; only the two JSON media types are accepted."""
    if call.request.content_type not in MEDIA_TYPES:
        raise ProductError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"Send the body as {' or '.join(MEDIA_TYPES)}, not {call.request.content_type!r}.",
        )
    parsed = json_body.loads(call.body, ErrorCode.BAD_JSON, "The body is not valid JSON.")
    if not isinstance(parsed, dict):
        raise ProductError(ErrorCode.BAD_JSON, "The body must be a JSON object.")
    return parsed


def optional_json_object(call: Call) -> dict[str, Any] | None:
    """The optional JSON body of a POST that creates a token, or ``None`` when it has none.

    Adobe's request has no body, and HTTP clients send "no body" as an empty one or as a
    form without fields; anything else must be JSON (415 otherwise), so that a grace period
    sent in another form is refused rather than silently ignored.
    """
    request = call.request
    try:
        if request.content_type in FORM_TYPES:
            # Django reads a form sent with a Content-Length (a session call's CSRF check
            # may have read it so already); a chunked one, which it reads as empty, is read here.
            fields, files = (
                bodies.form(request, call.body)
                if bodies.is_chunked(request)
                else (request.POST, request.FILES)
            )
            empty = not set(fields) - {"csrfmiddlewaretoken"} and not files
        else:
            empty = not call.body.strip()
    except RequestDataTooBig:
        raise body_too_large() from None
    except (SuspiciousOperation, MultiPartParserError):
        empty = False  # a form that cannot even be read: refused as not JSON below
    return None if empty else json_object(call)


def endpoint(*methods: str) -> Callable[[Handler], Callable[..., HttpResponse]]:
    """Turn ``handler(call, **values) -> (status, body)`` into a view of ``<client_code>``
    and the URL's other ``values``."""

    def decorate(handler: Handler) -> Callable[..., HttpResponse]:
        # Session callers are held to CSRF inside auth.caller; Basic callers need none.
        @csrf_exempt
        @functools.wraps(handler)
        def view(request: HttpRequest, client_code: str, **values: str) -> HttpResponse:
            # The id the request's log lines carry, so a caller's report can be traced.
            request_id = current_request_id() or uuid.uuid4().hex
            media_type = request.get_preferred_type(MEDIA_TYPES)
            try:
                if request.method not in methods:
                    raise ProductError(
                        ErrorCode.METHOD_NOT_ALLOWED,
                        f"{request.method} is not allowed here; use {' or '.join(methods)}.",
                        headers={"Allow": ", ".join(methods)},
                    )
                user = auth.caller(request)
                client = auth.managed_client(user, client_code)
                if media_type is None:
                    raise ProductError(
                        ErrorCode.NOT_ACCEPTABLE,
                        f"This API answers {' or '.join(MEDIA_TYPES)}; the Accept header allows neither.",
                    )
                actor = Actor.person(user, caller_address(request))
                status, body = handler(Call(request, client, actor), **values)
                response: HttpResponse = (
                    HttpResponse(status=status)
                    if status == NO_CONTENT
                    else JsonResponse(body, status=status, content_type=media_type)
                )
            except (ProductError, OperationalError, OSError) as error:
                # A busy database is a 503 in this API's shape and a body that stopped
                # arriving a 408; other database and system errors are not the caller's to see.
                fault = error if isinstance(error, ProductError) else faults.fault_error(error)
                if fault is None:
                    raise
                response = adobe_error(
                    fault, request_id=request_id, content_type=media_type or MEDIA_TYPES[1]
                )
            response["X-Request-Id"] = request_id
            add_never_cache_headers(response)
            return response

        return bodies.read_chunked_bodies(view)

    return decorate
