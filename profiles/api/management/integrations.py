"""The management API's integration tokens (docs/management-api.md#integration-tokens):
parse, call the model method the card uses, answer."""

from __future__ import annotations

from typing import Any

from profiles.api.management.documents import isoformat, last_used
from profiles.api.management.endpoint import (
    NO_CONTENT,
    Answer,
    Call,
    endpoint,
    json_object,
    optional_json_object,
)
from profiles.api.management.forms import (
    IntegrationAddForm,
    IntegrationPatchForm,
    IntegrationRegenerateForm,
)
from profiles.api.management.usage_views import usage_answer
from profiles.rules.errors import ErrorCode, ProductError
from profiles.tokens import permissions
from profiles.tokens.integration_listing import ListedIntegration, integrations_of
from profiles.tokens.integrations import Integration
from profiles.tokens.models import ProfileToken

_MAX_ID_DIGITS = 18  # any id up to 10**18 fits the 64-bit primary key


@endpoint("GET", "POST")
def integration_tokens(call: Call) -> Answer:
    if call.request.method == "POST":
        wanted = IntegrationAddForm(json_object(call)).validated()
        integration, token, plaintext = ProfileToken.objects.add_integration(
            call.client,
            name=wanted["name"],
            granted=wanted["permissions"],
            expires_in_days=wanted["expiresInDays"],
            actor=call.actor,
        )
        return 201, _issued(integration, token, plaintext)
    return 200, {"tokens": [_described(listed) for listed in integrations_of(call.client)]}


@endpoint("GET", "PATCH", "DELETE")
def integration_token(call: Call, token_id: str) -> Answer:
    listed = _listed(call, token_id)
    integration = listed.integration
    if call.request.method == "DELETE":
        ProfileToken.objects.revoke_integration(integration, actor=call.actor)
        return NO_CONTENT, {}
    if call.request.method == "PATCH":
        wanted = IntegrationPatchForm(json_object(call)).validated()
        integration.change(actor=call.actor, name=wanted["name"], granted=wanted["permissions"])
        listed = _listed(call, token_id)
    return 200, _described(listed)


@endpoint("POST")
def integration_token_regeneration(call: Call, token_id: str) -> Answer:
    integration = _listed(call, token_id).integration
    wanted = IntegrationRegenerateForm(optional_json_object(call) or {}).validated()
    grace = wanted["previousTokenGraceSeconds"] or 0
    token, plaintext = ProfileToken.objects.issue(
        call.client,
        integration=integration,
        expires_in_days=wanted["expiresInDays"],
        actor=call.actor,
        previous_token_grace_seconds=grace,
    )
    answer = _issued(integration, token, plaintext)
    previous = ProfileToken.objects.filter(integration=integration).in_grace(token.created_at)
    replaced = previous.first() if grace else None
    if replaced is not None:
        answer["previousTokenValidUntil"] = replaced.valid_until.isoformat()
    return 201, answer


@endpoint("GET")
def integration_token_usage(call: Call, token_id: str) -> Answer:
    """Its calls per day, across its re-generations (docs/management-api.md#token-usage)."""
    return usage_answer(call, _listed(call, token_id).integration)


def _listed(call: Call, token_id: str) -> ListedIntegration:
    """The client's unrevoked integration ``token_id`` names, or 404 ``token_not_found``."""
    # An id no token can have (not ASCII digits, or past a 64-bit integer) is not looked up.
    can_exist = token_id.isascii() and token_id.isdigit() and len(token_id) <= _MAX_ID_DIGITS
    found = integrations_of(call.client, integration_id=int(token_id)) if can_exist else []
    if not found:
        raise ProductError(
            ErrorCode.TOKEN_NOT_FOUND,
            f"Client {call.client.code!r} has no integration token {token_id[:20]!r}.",
        )
    return found[0]


def _issued(integration: Integration, token: ProfileToken, plaintext: str) -> dict[str, Any]:
    """The one answer that holds the token (docs/tokens.md#integration-tokens)."""
    return {
        "id": integration.pk,
        "name": integration.name,
        "permissions": permissions.names(integration.permissions),
        "accessToken": plaintext,
        "expiresAt": token.expires_at.isoformat(),
    }


def _described(listed: ListedIntegration) -> dict[str, Any]:
    token = listed.token
    described: dict[str, Any] = {
        "id": listed.integration.pk,
        "name": listed.integration.name,
        "permissions": listed.permission_names,
        "createdAt": listed.integration.created_at.isoformat(),
        "lastFour": token.last_four if token is not None else None,
        "expiresAt": isoformat(token.expires_at if token is not None else None),
        "lastUsedAt": isoformat(listed.last_used_at),
        "lastUsedFrom": listed.last_used_from,
    }
    if listed.previous is not None:
        described["previousToken"] = {
            "lastFour": listed.previous.last_four,
            "validUntil": listed.previous.valid_until.isoformat(),
            **last_used(listed.previous),
        }
    return described
