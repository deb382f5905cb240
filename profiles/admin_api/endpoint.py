"""One decorator owns every management API answer: access, media types and errors."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_exempt

from profiles import faults
from profiles.admin_api import auth
from profiles.models import Client
from profiles.responses import ApiError, adobe_error
from targetadmin.logging import current_request_id

if TYPE_CHECKING:
    from profiles.admin_api.auth import User

# Adobe's own type first: it is what a caller that accepts anything gets.
MEDIA_TYPES = ("application/vnd.adobe.target.v1+json", "application/json")


@dataclass(frozen=True)
class Call:
    """An authenticated, authorised call: who is asking, for which client."""

    request: HttpRequest
    client: Client
    user: User

    @property
    def remote_addr(self) -> str | None:
        return self.request.META.get("REMOTE_ADDR") or None


Answer = tuple[int, dict[str, Any]]
Handler = Callable[[Call], Answer]


def json_object(call: Call) -> dict[str, Any]:
    """The request's body as a JSON object; only the two JSON media types are accepted."""
    if call.request.content_type not in MEDIA_TYPES:
        raise ApiError(
            415,
            f"Send the body as {' or '.join(MEDIA_TYPES)}, not {call.request.content_type!r}.",
            code="MediaType.Unsupported",
        )
    try:
        parsed = json.loads(call.request.body)
    except RequestDataTooBig:
        raise ApiError(413, "The body is too large.", code="Body.TooLarge") from None
    except (ValueError, RecursionError):
        raise ApiError(400, "The body is not valid JSON.", code="Body.Invalid") from None
    if not isinstance(parsed, dict):
        raise ApiError(400, "The body must be a JSON object.", code="Body.Invalid")
    return parsed


def endpoint(*methods: str) -> Callable[[Handler], Callable[..., HttpResponse]]:
    """Turn ``handler(call) -> (status, body)`` into a view of ``<client_code>``."""

    def decorate(handler: Handler) -> Callable[..., HttpResponse]:
        # Session callers are held to CSRF inside auth.caller; Basic callers need none.
        @csrf_exempt
        @functools.wraps(handler)
        def view(request: HttpRequest, client_code: str) -> HttpResponse:
            # The id the request's log lines carry, so a caller's report can be traced.
            request_id = current_request_id() or uuid.uuid4().hex
            media_type = request.get_preferred_type(MEDIA_TYPES)
            try:
                if request.method not in methods:
                    raise ApiError(
                        405,
                        f"{request.method} is not allowed here; use {' or '.join(methods)}.",
                        code="Method.NotAllowed",
                        headers={"Allow": ", ".join(methods)},
                    )
                user = auth.caller(request)
                client = auth.managed_client(user, client_code)
                if media_type is None:
                    raise ApiError(
                        406,
                        f"This API answers {' or '.join(MEDIA_TYPES)}; the Accept header allows neither.",
                        code="MediaType.NotAcceptable",
                    )
                status, body = handler(Call(request, client, user))
                response: HttpResponse = JsonResponse(body, status=status, content_type=media_type)
            except (ApiError, OperationalError) as error:
                # A busy database is a 503 in this API's shape; other database errors are not
                # the caller's to see.
                fault = error if isinstance(error, ApiError) else faults.api_error_for(error)
                if fault is None:
                    raise
                response = adobe_error(
                    fault, request_id=request_id, content_type=media_type or MEDIA_TYPES[1]
                )
            response["X-Request-Id"] = request_id
            add_never_cache_headers(response)
            return response

        return view

    return decorate
