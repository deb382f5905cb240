"""The management API's views: parse, call the model method the screen uses, answer."""

from __future__ import annotations

from django.utils import timezone

from profiles.api.management.endpoint import Answer, Call, endpoint, json_object
from profiles.api.management.forms import PROFILE_API_SCOPE, SettingsPatchForm, TokenRequestForm
from profiles.rules.errors import ErrorCode, ProductError
from profiles.tokens.models import ProfileApiSettings, ProfileToken

SECONDS_PER_DAY = 24 * 60 * 60


@endpoint("GET", "POST")
def token(call: Call) -> Answer:
    if call.request.method == "POST":
        return _issue_token(call)
    return _describe_token(call)


def _issue_token(call: Call) -> Answer:
    days = TokenRequestForm(call.request.GET).validated()["expiresInDays"]
    _, plaintext = ProfileToken.objects.issue(
        call.client, expires_in_days=days, actor=call.user, remote_addr=call.remote_addr
    )
    return 201, {
        "accessToken": plaintext,
        "tokenType": "bearer",
        "scope": PROFILE_API_SCOPE,
        "expiresIn": days * SECONDS_PER_DAY,
    }


def _describe_token(call: Call) -> Answer:
    now = timezone.now()
    current = ProfileToken.objects.filter(client=call.client).unrevoked().first()
    if current is None or current.is_expired(now):
        ended = f" It expired at {current.expires_at.isoformat()}." if current else ""
        raise ProductError(
            ErrorCode.TOKEN_NOT_FOUND,
            f"Client {call.client.code!r} has no active profile authentication token.{ended}",
        )
    return 200, {
        "tokenType": "bearer",
        "scope": PROFILE_API_SCOPE,
        "expiresIn": int(current.time_remaining(now).total_seconds()),
        "lastFour": current.last_four,
        "createdAt": current.created_at.isoformat(),
        "expiresAt": current.expires_at.isoformat(),
    }


@endpoint("GET", "PATCH")
def client_settings(call: Call) -> Answer:
    found = ProfileApiSettings.for_client(call.client)
    if call.request.method == "PATCH":
        wanted = SettingsPatchForm(json_object(call)).validated()
        found.set_require_authentication(
            wanted["enableProfileApiAuthentication"],
            actor=call.user,
            remote_addr=call.remote_addr,
        )
    return 200, {"enableProfileApiAuthentication": found.require_authentication}
