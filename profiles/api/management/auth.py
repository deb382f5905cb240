"""Who is calling the management API, and whether they may manage the client.

Callers sign in with HTTP Basic, a logged-in session, or, with single sign-on, the identity
provider's access token as ``Authorization: Bearer`` (:class:`ProviderCaller`,
docs/management-api.md#provider-access-tokens). Basic credentials go through
``django.contrib.auth.authenticate(request=...)``, so each failure counts toward the same
django-axes lockout as the login form, and a locked-out caller is refused even with the
right password. Session callers are held to CSRF on unsafe methods; Basic callers send no
cookies, so CSRF cannot apply to them. A secret goes into a session caller's answer only when
the request comes from a page of this site (:func:`from_this_site`): a link or a form on
another site sends the session cookie along with a safe method too.

Checking a password costs a deliberately slow hash, spent even for a username that does not
exist, and django-axes' lockout (per username and address) never stops random usernames.
So failed Basic sign-ins are also counted per address (``profiles.access.throttle``): once
an address has spent ``MANAGEMENT_API_BASIC_FAILURE_LIMIT`` of them in the window, its
further Basic attempts are answered 429 before any password is hashed, until the window
ends (docs/management-api.md#throttling-by-address). A successful sign-in neither counts
nor resets the count, so one valid account cannot buy an address more guesses.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import authenticate
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.middleware.csrf import CsrfViewMiddleware

from profiles.access import provider, provider_roles
from profiles.access.actors import Actor
from profiles.access.addresses import caller_address
from profiles.access.lockout import cool_off_seconds
from profiles.access.models import Client, Role, is_client_code
from profiles.access.roles import role_of
from profiles.access.throttle import BASIC_SIGN_IN_FAILURES
from profiles.rules.errors import ErrorCode, ProductError
from profiles.tokens.secret import PREFIX as PROFILE_TOKEN_PREFIX

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    User = AbstractBaseUser | AnonymousUser

BASIC_CHALLENGE = 'Basic realm="targetadmin", charset="UTF-8"'
BEARER_CHALLENGE = 'Bearer realm="targetadmin"'


@dataclass(frozen=True)
class ProviderCaller:
    """A script calling with the identity provider's access token: the name the token gives
    it and the roles its groups give (``profiles.access.provider_roles``). Nothing of it is
    stored; its token is checked again on every call."""

    name: str
    roles: Mapping[str, Role]


# Longer than any username (Django's is 150): refused before it reaches a query or the
# lockout records, whose columns it would not fit on PostgreSQL.
MAX_USERNAME_LENGTH = 150


def _challenge(message: str, code: ErrorCode) -> ProductError:
    challenge = BASIC_CHALLENGE if settings.PASSWORD_SIGN_IN else BEARER_CHALLENGE
    return ProductError(code, message, headers={"WWW-Authenticate": challenge})


def basic_credentials(header: str) -> tuple[str, str]:
    """``(username, password)`` from the value of an ``Authorization: Basic`` header."""
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise _challenge(
            f"The management API takes HTTP Basic credentials, not {scheme!r}.",
            ErrorCode.AUTHENTICATION_UNSUPPORTED,
        )
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    username, colon, password = decoded.partition(":")
    if (
        not colon
        or not username
        or len(username) > MAX_USERNAME_LENGTH
        or "\x00" in decoded  # PostgreSQL text cannot hold NUL
    ):
        raise _challenge(
            "The Basic credentials are not base64 of 'username:password'.",
            ErrorCode.AUTHENTICATION_MALFORMED,
        )
    return username, password


def locked_out(request: HttpRequest) -> ProductError:
    seconds = cool_off_seconds(request)
    minutes = max(seconds // 60, 1)
    return ProductError(
        ErrorCode.AUTHENTICATION_LOCKED_OUT,
        "Too many failed sign-ins for this username from this address. "
        f"Sign-in is locked for {minutes} minutes; every further attempt starts the wait again.",
        retry_after=seconds or None,
    )


def too_many_failures(seconds: int) -> ProductError:
    return ProductError(
        ErrorCode.AUTHENTICATION_LOCKED_OUT,
        "Too many failed sign-ins from this address. "
        f"Sign-in with credentials is refused for {seconds} seconds.",
        retry_after=seconds,
    )


def _basic_user(request: HttpRequest, header: str) -> AbstractBaseUser:
    username, password = basic_credentials(header)
    address = caller_address(request) or "unknown"
    wait = BASIC_SIGN_IN_FAILURES.spent(address)
    if wait is not None:
        raise too_many_failures(wait)
    user = authenticate(request, username=username, password=password)
    if user is None:
        BASIC_SIGN_IN_FAILURES.count(address)
    if getattr(request, "axes_locked_out", False):
        raise locked_out(request)
    if user is None:
        raise _challenge("Invalid username or password.", ErrorCode.AUTHENTICATION_FAILED)
    return user


class _CsrfCheck(CsrfViewMiddleware):
    """The CSRF middleware's checks, reporting the reason instead of rendering a page."""

    def _reject(self, request: HttpRequest, reason: str) -> HttpResponse:
        return HttpResponseForbidden(reason)


def _unused_response(request: HttpRequest) -> HttpResponse:
    return HttpResponse()  # pragma: no cover - the check never calls through


def _enforce_csrf(request: HttpRequest) -> None:
    check = _CsrfCheck(_unused_response)
    check.process_request(request)
    rejection = check.process_view(request, _unused_response, (), {})
    if rejection is not None:
        reason = rejection.content.decode()
        raise ProductError(ErrorCode.CSRF_FAILED, f"CSRF verification failed: {reason}")


def from_this_site(request: HttpRequest) -> bool:
    """Whether a browser sent ``request`` from a page of this site: it says so
    (``Sec-Fetch-Site: same-origin``) or, a browser that does not send that header, its
    ``Origin`` is this site's, as CSRF's own check reads it. A link followed from elsewhere,
    an address typed in, and a request saying neither are not."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site == "same-origin"
    return "Origin" in request.headers and bool(
        _CsrfCheck(_unused_response)._origin_verified(request)  # type: ignore[attr-defined]
    )


def _provider_caller(request: HttpRequest, token: str) -> ProviderCaller:
    """The script the provider's access token names; failures count against the address's
    budget as failed Basic sign-ins do, so forged tokens cannot make us fetch keys forever."""
    if token.startswith(PROFILE_TOKEN_PREFIX):
        raise _challenge(
            "A profile token opens only the profile APIs; the management API takes the "
            "identity provider's access token.",
            ErrorCode.AUTHENTICATION_UNSUPPORTED,
        )
    address = caller_address(request) or "unknown"
    wait = BASIC_SIGN_IN_FAILURES.spent(address)
    if wait is not None:
        raise too_many_failures(wait)
    try:
        claims = provider.verified_claims(token, audience=settings.OIDC_API_AUDIENCE)
        name = provider_roles.display_name(claims)
    except (provider.TokenRefused, provider_roles.UnknownPerson) as error:
        BASIC_SIGN_IN_FAILURES.count(address)
        raise ProductError(
            ErrorCode.AUTHENTICATION_FAILED,
            f"The access token was refused: {error}.",
            headers={"WWW-Authenticate": f'{BEARER_CHALLENGE}, error="invalid_token"'},
        ) from error
    except provider.ProviderUnavailable as error:
        raise ProductError(
            ErrorCode.PROVIDER_UNAVAILABLE,
            "The identity provider, whose keys check the access token, cannot be reached.",
            retry_after=30,
        ) from error
    return ProviderCaller(name, provider_roles.roles_from_claims(claims))


def by_credentials(request: HttpRequest) -> bool:
    """Whether the caller sends credentials (Basic or Bearer): an ``Authorization`` header
    counts, even alongside a session."""
    return "Authorization" in request.headers


def caller(request: HttpRequest) -> User | ProviderCaller:
    """The authenticated caller, or ``ProductError``: 401 (no or bad credentials) / 429 (locked
    out, or too many failed sign-ins from the address) / 503 (the provider unreachable)."""
    if by_credentials(request):
        header = request.headers["Authorization"]
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() == "bearer" and provider.is_configured():
            return _provider_caller(request, token.strip())
        if not settings.PASSWORD_SIGN_IN:
            raise _challenge(
                "Password sign-in is switched off here: call with the identity provider's "
                "access token, Authorization: Bearer <token>.",
                ErrorCode.AUTHENTICATION_UNSUPPORTED,
            )
        return _basic_user(request, header)
    if request.user.is_authenticated:
        _enforce_csrf(request)
        return request.user
    how = [
        *(["HTTP Basic"] if settings.PASSWORD_SIGN_IN else []),
        *(["the identity provider's access token (Bearer)"] if provider.is_configured() else []),
    ]
    raise _challenge(
        f"Authentication required: sign in with {' or '.join(how)} as an Approver of the client.",
        ErrorCode.AUTHENTICATION_REQUIRED,
    )


def actor(caller: User | ProviderCaller, address: str | None) -> Actor:
    """Who the audit trail says acted: the person, or the script named as its token says."""
    if isinstance(caller, ProviderCaller):
        return Actor(None, address, f"{caller.name} (access token)"[:150])
    return Actor.person(caller, address)


def managed_client(user: User | ProviderCaller, code: str) -> Client:
    """The client named ``code`` if ``user`` is its Approver (or a superuser).

    Unlike the settings screen, which answers 404 to non-members, the API answers 403 to
    every signed-in caller who is not an Approver of the client, member or not, as Adobe's
    Admin API does. A client that does not exist is 403 too, so client codes do not leak;
    only a superuser, who may manage every client, is told 404.
    """
    # A code no client can have (PostgreSQL cannot even compare one holding NUL) is not looked up.
    client = Client.objects.filter(code=code).first() if is_client_code(code) else None
    if client is None:
        role = None
    elif isinstance(user, ProviderCaller):
        role = user.roles.get(client.code)
    else:
        role = role_of(user, client)
    if client is None and getattr(user, "is_superuser", False):
        raise ProductError(ErrorCode.CLIENT_NOT_FOUND, f"No client with code {code!r}.")
    if client is None or role is None or role < Role.APPROVER:
        raise ProductError(
            ErrorCode.FORBIDDEN,
            f"Only Approvers of client {code!r} can manage its profile authentication.",
        )
    return client
