"""The management API's usage answers: a token's calls per UTC day
(docs/management-api.md#token-usage)."""

from __future__ import annotations

from profiles.api.management.endpoint import Answer, Call, endpoint
from profiles.api.management.forms import UsageQueryForm
from profiles.rules.errors import ErrorCode, ProductError
from profiles.tokens import usage
from profiles.tokens.integrations import Integration

MAX_ID = 2**63 - 1


def _answer(call: Call, integration: Integration | None) -> Answer:
    days = UsageQueryForm(call.request.GET).validated()["days"]
    found = usage.days_of(call.client, integration.pk if integration else None, days)
    return 200, {"days": [day.as_json() for day in found]}


@endpoint("GET")
def client_token_usage(call: Call) -> Answer:
    """The client's own token, across its re-generations."""
    return _answer(call, None)


@endpoint("GET")
def integration_token_usage(call: Call, token_id: str) -> Answer:
    """An integration's token, across its re-generations; revoked ones' too, for 90 days."""
    # Any path segment reaches here, so that every id that names nothing gets this API's
    # 404; digits past the column's range name nothing (PostgreSQL would refuse them).
    wanted = int(token_id) if token_id.isascii() and token_id.isdigit() else None
    found = (
        Integration.objects.filter(client=call.client, pk=wanted).first()
        if wanted is not None and wanted <= MAX_ID
        else None
    )
    if found is None:
        raise ProductError(
            ErrorCode.TOKEN_NOT_FOUND,
            f"Client {call.client.code!r} has no integration token {token_id[:32]!r}.",
        )
    return _answer(call, found)
