"""The management API's usage answers: a token's calls per UTC day
(docs/management-api.md#token-usage)."""

from __future__ import annotations

from profiles.api.management.endpoint import Answer, Call, endpoint
from profiles.api.management.forms import UsageQueryForm
from profiles.tokens import usage
from profiles.tokens.integrations import Integration


def usage_answer(call: Call, integration: Integration | None) -> Answer:
    """The days the query asks for of ``integration``'s usage, or of the client's own token."""
    days = UsageQueryForm(call.request.GET).validated()["days"]
    found = usage.days_of(call.client, integration.pk if integration else None, days)
    return 200, {"days": [day.as_json() for day in found]}


@endpoint("GET")
def client_token_usage(call: Call) -> Answer:
    """The client's own token, across its re-generations."""
    return usage_answer(call, None)
