"""The management API's views: parse, call the model method the screen uses, answer."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from profiles.api.management.documents import last_used
from profiles.api.management.endpoint import (
    NO_CONTENT,
    Answer,
    Call,
    endpoint,
    json_object,
    optional_json_object,
)
from profiles.api.management.forms import (
    PROFILE_API_SCOPE,
    SettingsPatchForm,
    TokenRequestBodyForm,
    TokenRequestForm,
)
from profiles.rules.errors import ErrorCode, ProductError
from profiles.tokens.models import ProfileApiSettings, ProfileToken

SECONDS_PER_DAY = 24 * 60 * 60
GRACE = "previousTokenGraceSeconds"


@endpoint("GET", "POST")
def token(call: Call) -> Answer:
    if call.request.method == "POST":
        return _issue_token(call)
    return _describe_token(call)


def _grace_seconds(call: Call, from_query: int | None) -> int:
    """``previousTokenGraceSeconds`` from the query or the optional JSON body; 0 when absent."""
    body = optional_json_object(call)
    from_body = TokenRequestBodyForm(body).validated()[GRACE] if body is not None else None
    if from_query is not None and from_body is not None:
        raise ProductError(
            ErrorCode.INVALID, f"{GRACE}: send it in the query or in the body, not in both."
        )
    return from_body if from_body is not None else (from_query or 0)


def _issue_token(call: Call) -> Answer:
    query = TokenRequestForm(call.request.GET).validated()
    days = query["expiresInDays"]
    grace = _grace_seconds(call, query[GRACE])
    issued, plaintext = ProfileToken.objects.issue(
        call.client,
        expires_in_days=days,
        actor=call.actor,
        previous_token_grace_seconds=grace,
    )
    body: dict[str, Any] = {
        "accessToken": plaintext,
        "tokenType": "bearer",
        "scope": PROFILE_API_SCOPE,
        "expiresIn": days * SECONDS_PER_DAY,
    }
    previous = (
        ProfileToken.objects.of_client(call.client).in_grace(issued.created_at).first()
        if grace
        else None
    )
    if previous is not None:
        body["previousTokenValidUntil"] = previous.valid_until.isoformat()
    return 201, body


def _describe_token(call: Call) -> Answer:
    now = timezone.now()
    tokens = ProfileToken.objects.of_client(call.client)
    current = tokens.current().first()
    if current is None or current.is_expired(now):
        ended = f" It expired at {current.expires_at.isoformat()}." if current else ""
        raise ProductError(
            ErrorCode.TOKEN_NOT_FOUND,
            f"Client {call.client.code!r} has no active profile authentication token.{ended}",
        )
    # Adobe's answer holds the token itself; here only when a copy was kept
    # (docs/tokens.md#retrievable-tokens) and the caller may see it, and its retrieval is
    # audited. A session call from elsewhere is answered as if no copy were kept.
    plaintext = (
        current.retrieve(via="management API", actor=call.actor) if call.may_see_secrets else None
    )
    body: dict[str, Any] = {
        **({"accessToken": plaintext} if plaintext is not None else {}),
        "tokenType": "bearer",
        "scope": PROFILE_API_SCOPE,
        "expiresIn": int(current.time_remaining(now).total_seconds()),
        "lastFour": current.last_four,
        "createdAt": current.created_at.isoformat(),
        "expiresAt": current.expires_at.isoformat(),
        **last_used(current),
    }
    previous = tokens.in_grace(now).first()
    if previous is not None:
        body["previousToken"] = {
            "lastFour": previous.last_four,
            "validUntil": previous.valid_until.isoformat(),
            **last_used(previous),
        }
    return 200, body


@endpoint("DELETE")
def previous_token(call: Call) -> Answer:
    """End the previous token's grace period now: "Revoke now" on the screen."""
    revoked = ProfileToken.objects.revoke_previous(call.client, actor=call.actor)
    if revoked is None:
        raise ProductError(
            ErrorCode.PREVIOUS_TOKEN_NOT_FOUND,
            f"Client {call.client.code!r} has no previous profile authentication token "
            "in its grace period.",
        )
    return NO_CONTENT, {}


@endpoint("GET", "PATCH")
def client_settings(call: Call) -> Answer:
    found = ProfileApiSettings.for_client(call.client)
    if call.request.method == "PATCH":
        wanted = SettingsPatchForm(json_object(call)).validated()
        with transaction.atomic():
            if wanted["enableProfileApiAuthentication"] is not None:
                found.set_require_authentication(
                    wanted["enableProfileApiAuthentication"],
                    actor=call.actor,
                )
            if wanted["profileApiAllowedNetworks"] is not None:
                found.set_allowed_networks(
                    wanted["profileApiAllowedNetworks"],
                    actor=call.actor,
                )
            if wanted["profileTokenRetrievable"] is not None:
                found.set_token_retrievable(
                    wanted["profileTokenRetrievable"],
                    actor=call.actor,
                )
    return 200, {
        "enableProfileApiAuthentication": found.require_authentication,
        "profileApiAllowedNetworks": list(found.allowed_networks),
        "profileTokenRetrievable": found.token_retrievable,
    }
