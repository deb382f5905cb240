"""The one gate in front of every profile API view (docs/api.md#authentication).

Usage::

    @profile_api(xml_error, methods=("GET", "POST"))
    def update(request: HttpRequest, client: Client) -> HttpResponse: ...

    @profile_api(rest_error, client_param="client")
    def fetch(request: HttpRequest, client: Client, pc_id: str) -> HttpResponse: ...

The decorated view receives the resolved ``Client`` in place of the URL's ``client`` code
and runs only once the call is authenticated. The decorator:

- resolves the client from the URL's ``client`` segment, or from the query parameter
  ``client_param`` names. On an ``/m2/`` path the literal segment ``client`` means "the
  first label of the Host header" (``demo.tt.omtrdc.net``, ``demo.localhost:8000``), the
  way public clients call Adobe's placeholder path. A code that names no client (or that no
  client can have) is refused exactly as a client that requires authentication: the same
  401, message, challenge and envelope, counted by the same throttle, so client codes
  cannot be enumerated without a token;
- answers methods outside ``methods`` with 405;
- makes the view CSRF-exempt (scripts hold no session) and never redirects to a login page,
  and marks it so that it is served without the pages' middleware (``is_profile_api``);
- refuses, with 403, a call to a client with allowed networks from any other address
  (docs/api.md#allowed-networks), before any token is considered and whether or not the
  client requires authentication; the caller's address is ``caller_address``;
- enforces docs/api.md#authentication through ``profiles.tokens.verification``: when the
  client's "Require Authentication" is off every call is accepted and a sent token is ignored; when on, ``Authorization: Bearer <token>`` or the
  legacy ``access_token: <token>`` header must carry the client's active token (either one
  is enough, since some clients send their Adobe I/O login as the Bearer). A token in the
  query string or the body is never accepted;
- counts refused calls per remote address (``profiles.access.throttle``) and, past
  ``PROFILE_API_AUTH_FAILURE_LIMIT`` failures in a ``PROFILE_API_AUTH_FAILURE_WINDOW_SECONDS``
  window, answers further failures with 429 and ``Retry-After``. A valid token is never
  throttled, so one broken script behind a shared address cannot lock out a working one,
  and the accepted path never touches the cache;
- logs every refused call with, at most, the presented token's last four characters;
- renders every ``ProductError`` the view raises, and every input the framework cannot decode,
  in the endpoint's error envelope (``envelope``): no input ends in a 500;
- answers 503 with ``Retry-After`` in that envelope when the database stays busy past its
  busy timeout, and 507 when the disk is full (``profiles.rules.faults``); the refused change was
  not applied.

Cost of the check: an accepted call with a token spends one indexed query before the view
runs (``profiles.tokens.verification``), and, at most once a minute per token, one
conditional UPDATE recording its last use and the caller's address.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Sequence
from typing import Concatenate, ParamSpec

from django.core.exceptions import (
    DisallowedHost,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
)
from django.db import OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from profiles.access.addresses import caller_address
from profiles.access.models import Client, is_client_code
from profiles.access.throttle import PROFILE_API_FAILURES
from profiles.rules import faults
from profiles.rules.errors import ErrorCode, ProductError
from profiles.tokens import verification
from profiles.tokens.models import Rejection

logger = logging.getLogger(__name__)

P = ParamSpec("P")
Envelope = Callable[[ProductError], HttpResponse]
ApiView = Callable[Concatenate[HttpRequest, Client, P], HttpResponseBase]

HOST_PLACEHOLDER = "client"
_QUERY_TOKEN_NAMES = ("access_token", "accessToken", "token", "authorization")

MISSING_MESSAGE = (
    "Authentication is required: send the profile authentication token in an "
    "'Authorization: Bearer <token>' header."
)
IN_QUERY_MESSAGE = (
    "Authentication is required: a token in the query string is never accepted; "
    "send it in an 'Authorization: Bearer <token>' header."
)
INVALID_MESSAGE = "The profile authentication token is invalid."
EXPIRED_MESSAGE = "The profile authentication token has expired."
NETWORK_MESSAGE = "This client accepts profile API calls only from its allowed networks."


def profile_api(
    envelope: Envelope,
    *,
    methods: Sequence[str] = ("GET",),
    client_param: str | None = None,
) -> Callable[[ApiView[P]], Callable[..., HttpResponseBase]]:
    """Guard a profile API view; see the module docstring."""
    allowed = tuple(method.upper() for method in methods)

    def decorate(view: ApiView[P]) -> Callable[..., HttpResponseBase]:
        @functools.wraps(view)
        def guarded(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
            try:
                if request.method not in allowed:
                    raise ProductError(
                        ErrorCode.METHOD_NOT_ALLOWED,
                        f"Method {request.method} is not allowed; use {' or '.join(allowed)}.",
                        headers={"Allow": ", ".join(allowed)},
                    )
                code = _client_code(request, kwargs.pop("client", None), client_param)
                client = authenticate(request, code)
                return view(request, client, *args, **kwargs)
            except ProductError as error:
                return envelope(error)
            except Http404:
                return envelope(ProductError(ErrorCode.NOT_FOUND, "Not found."))
            except (RequestDataTooBig, TooManyFieldsSent) as error:
                return envelope(ProductError(ErrorCode.TOO_LARGE, f"Request too large: {error}"))
            except DisallowedHost:
                return envelope(
                    ProductError(ErrorCode.BAD_REQUEST, "The Host header is not allowed.")
                )
            except (SuspiciousOperation, MultiPartParserError) as error:
                return envelope(ProductError(ErrorCode.BAD_REQUEST, f"Malformed request: {error}"))
            except UnicodeDecodeError:
                return envelope(
                    ProductError(ErrorCode.BAD_REQUEST, "The request is not valid UTF-8.")
                )
            except json.JSONDecodeError as error:
                return envelope(
                    ProductError(ErrorCode.BAD_REQUEST, f"The body is not valid JSON: {error}")
                )
            except RecursionError:
                return envelope(
                    ProductError(ErrorCode.BAD_REQUEST, "The body is nested too deeply.")
                )
            except (OperationalError, OSError) as error:
                fault = faults.fault_error(error)
                if fault is None:
                    raise
                return envelope(fault)

        guarded.profile_api = True  # type: ignore[attr-defined]  # see is_profile_api
        return csrf_exempt(guarded)

    return decorate


def is_profile_api(view: object) -> bool:
    """Whether ``view`` is guarded by :func:`profile_api` (it then needs no page middleware,
    docs/operations.md#the-api-path)."""
    return getattr(view, "profile_api", False) is True


def _client_code(request: HttpRequest, from_path: object, client_param: str | None) -> str:
    if client_param is not None:
        code = request.GET.get(client_param, "")
        if not code:
            raise ProductError(
                ErrorCode.BAD_REQUEST, f"The '{client_param}' query parameter is required."
            )
    elif isinstance(from_path, str):
        code = from_path
        if code == HOST_PLACEHOLDER and request.path_info.startswith("/m2/"):
            code = request.get_host().partition(":")[0].split(".")[0].lower()
    else:
        raise ProductError(ErrorCode.NOT_FOUND, "No client in the request.")
    return code


def authenticate(request: HttpRequest, code: str) -> Client:
    """The client named ``code`` once the call passes docs/api.md#authentication."""
    try:
        return verification.authenticate(
            code, presented_tokens(request), address=caller_address(request)
        )
    except verification.NetworkRefused as refused:
        raise _network_refusal(request, refused) from None
    except verification.Refused as refused:
        raise _refusal(request, refused) from None


def _network_refusal(request: HttpRequest, refused: verification.NetworkRefused) -> ProductError:
    """403 naming the rule, never the networks or the address; counted and logged like a
    refused token, so probing from elsewhere is throttled too."""
    address = caller_address(request) or "unknown"
    retry_after = PROFILE_API_FAILURES.count(address)
    logger.warning(
        "refused profile API call: client=%s address=%s reason=network not allowed path=%s",
        refused.client.code,
        address,
        request.path_info[:200],
    )
    if retry_after is not None:
        return _throttled(retry_after)
    return ProductError(ErrorCode.NETWORK_NOT_ALLOWED, NETWORK_MESSAGE)


def presented_tokens(request: HttpRequest) -> list[str]:
    """The non-empty tokens of the Bearer and legacy ``access_token`` headers, in that order."""
    found = []
    scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        found.append(credentials.strip())
    legacy = request.META.get("HTTP_ACCESS_TOKEN", "").strip()
    if legacy:
        found.append(legacy)
    return found


def _refusal(request: HttpRequest, refused: verification.Refused) -> ProductError:
    reasons = refused.reasons
    if not reasons:
        in_query = any(name in request.GET for name in _QUERY_TOKEN_NAMES)
        message = IN_QUERY_MESSAGE if in_query else MISSING_MESSAGE
        error = ProductError(
            ErrorCode.UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"}
        )
        reason, last_four = "missing", ""
    else:
        # The most useful reason wins: "expired" tells the owner to re-generate.
        chosen = next((r for r in reasons if r.reason is Rejection.EXPIRED), reasons[0])
        message = EXPIRED_MESSAGE if chosen.reason is Rejection.EXPIRED else INVALID_MESSAGE
        error = ProductError(
            ErrorCode.UNAUTHORIZED,
            message,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
        reason, last_four = chosen.reason, chosen.last_four
    address = caller_address(request) or "unknown"
    retry_after = PROFILE_API_FAILURES.count(address)
    # The log, unlike the answer, tells the operator the client does not exist.
    known = refused.client is not None
    logger.warning(
        "refused profile API call: client=%s address=%s reason=%s token=%s path=%s",
        refused.code if is_client_code(refused.code) else ascii(refused.code[:64]),
        address,
        reason if known else f"{reason}, unknown client",
        f"…{last_four}" if last_four else "-",
        request.path_info[:200],
    )
    if retry_after is not None:
        return _throttled(retry_after)
    return error


def _throttled(retry_after: int) -> ProductError:
    """The answer once an address has spent its refusals for the window."""
    return ProductError(
        ErrorCode.TOO_MANY_REQUESTS,
        f"Too many failed authentication attempts; retry after {retry_after} seconds.",
        retry_after=retry_after,
    )
