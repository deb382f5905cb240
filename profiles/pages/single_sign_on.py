"""Signing in through the identity provider (docs/operations.md#single-sign-on).

mozilla-django-oidc runs the protocol: the authorization code flow with PKCE, ``state`` and
``nonce`` kept in the session and used once. What is ours: the provider's endpoints come
from its discovery document when a sign-in needs them (so pages and passwords work while it
is down), the ID token is checked by ``profiles.access.provider`` (signature, issuer,
audience, expiry) and its nonce here, the person's roles come from their groups at every
sign-in, and a refused or impossible sign-in is a page that says why, with an audit line.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url
from django.utils.crypto import constant_time_compare
from django.views.generic import View
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from profiles.access import provider, provider_roles, sign_in_log
from profiles.access.addresses import caller_address


class SignInRefused(Exception):
    """The provider's answer cannot sign anyone in; the message says why."""


class ProviderBackend(OIDCAuthenticationBackend):  # type: ignore[misc]
    """Signs in the person the callback's ID token names (``authenticate`` is called with
    the ``nonce`` only by the callback view, never by a password form)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The library reads the endpoints here; ours are read when a sign-in needs them.
        self.UserModel = get_user_model()

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> User | None:
        if request is None or "nonce" not in kwargs or not provider.is_configured():
            return None
        self.OIDC_OP_TOKEN_ENDPOINT = provider.provider().token_endpoint
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        user: User | None = super().authenticate(request, **kwargs)
        return user

    def get_user(self, user_id: Any) -> User | None:
        # Django's check, which the library's own skips: a deactivated user's session ends.
        user: User | None = ModelBackend.get_user(self, user_id)
        return user

    def get_token(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = super().get_token(payload)
        except requests.HTTPError as error:
            status = error.response.status_code if error.response is not None else "no"
            raise SignInRefused(
                f"The identity provider refused to complete the sign-in (status {status}): "
                "the sign-in code was used already, has expired, or was not issued to this "
                "application."
            ) from error
        except requests.RequestException as error:
            raise provider.ProviderUnavailable(f"token endpoint: {type(error).__name__}") from error
        return answer

    def verify_token(self, token: object, **kwargs: Any) -> dict[str, Any]:
        if not isinstance(token, str):
            raise SignInRefused("The identity provider sent no ID token.")
        try:
            claims = provider.verified_claims(token, audience=settings.OIDC_RP_CLIENT_ID)
        except provider.TokenRefused as error:
            raise SignInRefused(f"The ID token was refused: {error}.") from error
        expected, sent = kwargs.get("nonce"), claims.get("nonce")
        if not (
            isinstance(expected, str)
            and isinstance(sent, str)
            and constant_time_compare(expected, sent)
        ):
            raise SignInRefused(
                "The ID token was refused: its nonce is not the one this sign-in sent "
                "(a token replayed from another sign-in)."
            )
        return claims

    def get_userinfo(
        self, access_token: str, id_token: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        # The ID token carries the claims we read, checked above; no second request.
        return payload

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> User:
        try:
            user = provider_roles.signed_in_user(provider.provider().issuer, payload)
        except provider_roles.UnknownPerson as error:
            raise SignInRefused(
                f"The identity provider's account cannot sign in: {error}."
            ) from error
        address = caller_address(self.request)
        provider_roles.apply_roles(user, provider_roles.roles_from_claims(payload), address)
        provider_roles.apply_operator(user, provider_roles.is_operator(payload), address)
        sign_in_log.signed_in(user.get_username(), address)
        return user


def _problem(request: HttpRequest, title: str, message: str, status: int) -> HttpResponse:
    return render(
        request,
        "registration/sign_in_problem.html",
        {"title": title, "message": message},
        status=status,
    )


def refused(request: HttpRequest, reason: str) -> HttpResponse:
    sign_in_log.refused(reason, caller_address(request))
    return _problem(request, "Sign-in refused", reason, 403)


def provider_down(request: HttpRequest, error: provider.ProviderUnavailable) -> HttpResponse:
    sign_in_log.refused(f"the identity provider is unavailable ({error})", caller_address(request))
    return _problem(
        request,
        "The identity provider cannot be reached",
        f"{settings.OIDC_PROVIDER_NAME} did not answer. Try again in a few minutes; if it "
        "keeps failing, tell your administrator.",
        503,
    )


def _require_provider() -> None:
    if not provider.is_configured():
        raise Http404("Single sign-on is not configured.")


class ProviderRedirectView(OIDCAuthenticationRequestView):  # type: ignore[misc]
    """Sends the browser to the provider, with a new ``state``, ``nonce`` and PKCE challenge."""

    def __init__(self, **kwargs: Any) -> None:
        View.__init__(self, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        _require_provider()
        try:
            self.OIDC_OP_AUTH_ENDPOINT = provider.provider().authorization_endpoint
        except provider.ProviderUnavailable as error:
            return provider_down(request, error)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        response: HttpResponse = super().get(request)
        return response


class ProviderCallbackView(OIDCAuthenticationCallbackView):  # type: ignore[misc]
    """Where the provider sends the browser back; each ``state`` is accepted once."""

    def get(self, request: HttpRequest) -> HttpResponse:
        _require_provider()
        try:
            response: HttpResponse = super().get(request)
        except SuspiciousOperation:
            return refused(
                request,
                "This sign-in's state is unknown or was used already (a replayed or "
                "forged answer). Start again from the sign-in page.",
            )
        except SignInRefused as error:
            return refused(request, str(error))
        except provider.ProviderUnavailable as error:
            return provider_down(request, error)
        return response

    def login_failure(self) -> HttpResponse:
        error = self.request.GET.get("error")
        reason = (
            f"The identity provider did not sign you in ({error[:100]})."
            if error
            else "The sign-in was not completed: it was started in another browser or "
            "has already been used, or the account is inactive. Start again from the "
            "sign-in page."
        )
        return refused(self.request, reason)


def provider_logout_url(request: HttpRequest) -> str:
    """Where sign-out leads: the provider's logout (RP-initiated logout, ending its session
    too) when the person signed in through it and it offers one, else the sign-in page."""
    signed_out = resolve_url(settings.LOGOUT_REDIRECT_URL)
    id_token = request.session.get("oidc_id_token")
    if not id_token or not provider.is_configured():
        return signed_out
    try:
        end_session = provider.provider().end_session_endpoint
    except provider.ProviderUnavailable:
        return signed_out
    if not end_session:
        return signed_out
    query = urlencode(
        {
            "id_token_hint": id_token,
            "post_logout_redirect_uri": request.build_absolute_uri(signed_out),
            "client_id": settings.OIDC_RP_CLIENT_ID,
        }
    )
    return f"{end_session}?{query}"
