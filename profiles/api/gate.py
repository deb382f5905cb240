"""The one gate in front of every profile API view (docs/api.md#authentication).

Usage::

    @profile_api(xml_error, needs=Permission.BATCH, methods=("POST",))
    def batch_update(request: HttpRequest, client: Client) -> HttpResponse: ...

    @profile_call(rest_error, needs=Permission.FETCH, client_param="client")
    def fetch(call: ApiCall, client: Client, pc_id: str) -> Answer: ...

The decorated view receives the resolved ``Client`` in place of the URL's ``client`` code
and runs only once the call is authenticated. ``profile_api`` guards a Django view;
``profile_call`` an endpoint written over an ``ApiCall`` (the WSGI environ and the body),
which Django serves as a view and the fast lane in front of Django serves without a
request (docs/operations.md#the-api-path). Both pass the same :class:`Gate`, which:

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
  client's "Require Authentication" is off every call is accepted and a sent token is
  ignored; when on, ``Authorization: Bearer <token>`` or the legacy ``access_token:
  <token>`` header must carry the client's active token (either one is enough, since some
  clients send their Adobe I/O login as the Bearer). A token in the query string or the
  body is never accepted;
- refuses, with 403 ``token_scope``, a call made with a token that lacks the permission the
  endpoint ``needs`` (docs/tokens.md#permissions): an integration's token limited to other
  calls. The client's own token has every permission. Such a refusal is logged but not
  counted by the throttle: the token is valid;
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
conditional UPDATE recording its last use and the caller's address; counting the call for
the token's usage costs no query, and its counts are written by one upsert at most once a
minute per token and process (``profiles.tokens.tally``).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

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

from profiles.access.addresses import address_of
from profiles.access.models import Client, is_client_code
from profiles.access.throttle import PROFILE_API_FAILURES
from profiles.api.calls import ApiCall
from profiles.api.envelopes import Answer, as_response
from profiles.edge.security import checked_host
from profiles.rules import faults, metrics
from profiles.rules.errors import ErrorCode, ProductError
from profiles.tokens import verification
from profiles.tokens.models import Rejection
from profiles.tokens.permissions import Permission

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
Envelope = Callable[[ProductError], Answer]
ApiView = Callable[Concatenate[HttpRequest, Client, P], HttpResponseBase]
CallWork = Callable[Concatenate[ApiCall, Client, P], Answer]

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


def scope_message(needs: Permission) -> str:
    """The refusal of a token without ``needs``: it names the permission the call needs."""
    return (
        f"This call needs the '{str(needs.name).lower()}' permission, which the profile "
        "authentication token does not have."
    )


@dataclass(frozen=True, slots=True)
class Gate:
    """One endpoint's gate: its envelope, the permission it needs, its methods, and where its
    client code is."""

    envelope: Envelope
    needs: Permission
    methods: tuple[str, ...]
    client_param: str | None

    def serve(self, call: ApiCall, from_path: object, work: Callable[[Client], T]) -> T | Answer:
        """``work``'s answer for the client the call names once the call passes the gate;
        else the refusal, in the endpoint's envelope."""
        try:
            if call.method not in self.methods:
                raise ProductError(
                    ErrorCode.METHOD_NOT_ALLOWED,
                    f"Method {call.method} is not allowed; use {' or '.join(self.methods)}.",
                    headers={"Allow": ", ".join(self.methods)},
                )
            client = authenticate(call, client_code(call, from_path, self.client_param), self.needs)
            return work(client)
        except Exception as failure:
            error = product_error(failure)
            if error is None:
                raise
            return self.envelope(error)


def product_error(failure: Exception) -> ProductError | None:
    """What a failure tells the caller, or ``None`` for a server error (a 500)."""
    match failure:
        case ProductError():
            return failure
        case Http404():
            return ProductError(ErrorCode.NOT_FOUND, "Not found.")
        case RequestDataTooBig() | TooManyFieldsSent():
            return ProductError(ErrorCode.TOO_LARGE, f"Request too large: {failure}")
        case DisallowedHost():
            return ProductError(ErrorCode.BAD_REQUEST, "The Host header is not allowed.")
        case SuspiciousOperation() | MultiPartParserError():
            return ProductError(ErrorCode.BAD_REQUEST, f"Malformed request: {failure}")
        case UnicodeDecodeError():
            return ProductError(ErrorCode.BAD_REQUEST, "The request is not valid UTF-8.")
        case json.JSONDecodeError():
            return ProductError(ErrorCode.BAD_REQUEST, f"The body is not valid JSON: {failure}")
        case RecursionError():
            return ProductError(ErrorCode.BAD_REQUEST, "The body is nested too deeply.")
        case OperationalError() | OSError():
            return faults.fault_error(failure)
    return None


def profile_api(
    envelope: Envelope,
    *,
    needs: Permission,
    methods: Sequence[str] = ("GET",),
    client_param: str | None = None,
) -> Callable[[ApiView[P]], Callable[..., HttpResponseBase]]:
    """Guard a profile API view; see the module docstring."""
    gate = Gate(envelope, needs, tuple(method.upper() for method in methods), client_param)

    def decorate(view: ApiView[P]) -> Callable[..., HttpResponseBase]:
        @functools.wraps(view)
        def guarded(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
            from_path = kwargs.pop("client", None)
            served = gate.serve(
                ApiCall.of(request),
                from_path,
                lambda client: view(request, client, *args, **kwargs),
            )
            return as_response(served) if isinstance(served, Answer) else served

        guarded.profile_api = True  # type: ignore[attr-defined]  # see is_profile_api
        return csrf_exempt(guarded)

    return decorate


class CallView:
    """A profile API written over an :class:`ApiCall` rather than a Django request, so that
    both doors serve it (docs/operations.md#the-api-path): Django calls it as a view;
    the fast lane calls :meth:`answer`. Made by :func:`profile_call`."""

    profile_api = True  # see is_profile_api
    csrf_exempt = True  # scripts hold no session

    def __init__(self, gate: Gate, work: CallWork[...]) -> None:
        functools.update_wrapper(self, work)
        self.gate = gate
        self.work = work

    def answer(self, call: ApiCall, client: object = None, **kwargs: str) -> Answer:
        """The gated answer to ``call``; ``client`` is the URL's ``client`` segment."""
        return self.gate.serve(call, client, lambda found: self.work(call, found, **kwargs))

    def __call__(self, request: HttpRequest, *args: object, **kwargs: str) -> HttpResponse:
        return as_response(self.answer(ApiCall.of(request), **kwargs))


def profile_call(
    envelope: Envelope,
    *,
    needs: Permission,
    methods: Sequence[str] = ("GET",),
    client_param: str | None = None,
) -> Callable[[CallWork[...]], CallView]:
    """:func:`profile_api` for an endpoint written over an :class:`ApiCall`."""
    gate = Gate(envelope, needs, tuple(method.upper() for method in methods), client_param)
    return lambda work: CallView(gate, work)


def is_profile_api(view: object) -> bool:
    """Whether ``view`` is guarded by :func:`profile_api` (it then needs no page middleware,
    docs/operations.md#the-api-path)."""
    return getattr(view, "profile_api", False) is True


def client_code(call: ApiCall, from_path: object, client_param: str | None) -> str:
    if client_param is not None:
        code = call.query.get(client_param, "")
        if not code:
            raise ProductError(
                ErrorCode.BAD_REQUEST, f"The '{client_param}' query parameter is required."
            )
    elif isinstance(from_path, str):
        code = from_path
        if code == HOST_PLACEHOLDER and call.path_info.startswith("/m2/"):
            code = checked_host(call.environ).partition(":")[0].split(".")[0].lower()
    else:
        raise ProductError(ErrorCode.NOT_FOUND, "No client in the request.")
    return code


def authenticate(call: ApiCall, code: str, needs: Permission) -> Client:
    """The client named ``code`` once the call passes docs/api.md#authentication with a
    token that has the permission the call ``needs``."""
    try:
        return verification.authenticate(
            code, presented_tokens(call.environ), address=address_of(call.environ), needs=needs
        )
    except verification.ScopeRefused as refused:
        raise _scope_refusal(call, refused) from None
    except verification.NetworkRefused as refused:
        raise _network_refusal(call, refused) from None
    except verification.Refused as refused:
        raise _refusal(call, refused) from None


def _network_refusal(call: ApiCall, refused: verification.NetworkRefused) -> ProductError:
    """403 naming the rule, never the networks or the address; counted and logged like a
    refused token, so probing from elsewhere is throttled too."""
    address = address_of(call.environ) or "unknown"
    logger.warning(
        "refused profile API call: client=%s address=%s reason=network not allowed path=%s",
        refused.client.code,
        address,
        call.path_info[:200],
    )
    error = ProductError(ErrorCode.NETWORK_NOT_ALLOWED, NETWORK_MESSAGE)
    return _refused(address, metrics.Refusal.NETWORK, error)


def _scope_refusal(call: ApiCall, refused: verification.ScopeRefused) -> ProductError:
    logger.warning(
        "refused profile API call: client=%s address=%s reason=needs %s token=…%s path=%s",
        refused.client.code,
        address_of(call.environ) or "unknown",
        str(refused.needs.name).lower(),
        refused.token.last_four,
        call.path_info[:200],
    )
    # Not throttled: the token is valid, and its owner is told what it lacks.
    metrics.count_refusal(metrics.Refusal.SCOPE)
    return ProductError(ErrorCode.TOKEN_SCOPE, scope_message(refused.needs))


def presented_tokens(environ: Mapping[str, Any]) -> list[str]:
    """The non-empty tokens of the Bearer and legacy ``access_token`` headers, in that order."""
    found = []
    scheme, _, credentials = environ.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        found.append(credentials.strip())
    legacy = environ.get("HTTP_ACCESS_TOKEN", "").strip()
    if legacy:
        found.append(legacy)
    return found


def _refusal(call: ApiCall, refused: verification.Refused) -> ProductError:
    reasons = refused.reasons
    if not reasons:
        in_query = any(name in call.query for name in _QUERY_TOKEN_NAMES)
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
        if reason is Rejection.INVALID and refused.revoked:
            reason = "revoked"  # answered as invalid; told apart in the log and the metrics
    address = address_of(call.environ) or "unknown"
    # The log, unlike the answer, tells the operator the client does not exist.
    known = refused.client is not None
    logger.warning(
        "refused profile API call: client=%s address=%s reason=%s token=%s path=%s",
        refused.code if is_client_code(refused.code) else ascii(refused.code[:64]),
        address,
        reason if known else f"{reason}, unknown client",
        f"…{last_four}" if last_four else "-",
        call.path_info[:200],
    )
    return _refused(address, metrics.Refusal(reason), error)


def _refused(address: str, reason: metrics.Refusal, error: ProductError) -> ProductError:
    """``error``, or 429 once ``address`` has spent its refusals for the window; the
    refusal is counted by the throttle and by the metrics (docs/operations.md#metrics)."""
    retry_after = PROFILE_API_FAILURES.count(address)
    if retry_after is not None:
        metrics.count_refusal(metrics.Refusal.THROTTLED)
        return ProductError(
            ErrorCode.TOO_MANY_REQUESTS,
            f"Too many failed authentication attempts; retry after {retry_after} seconds.",
            retry_after=retry_after,
        )
    metrics.count_refusal(reason)
    return error
