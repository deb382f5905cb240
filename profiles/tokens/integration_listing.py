"""A client's unrevoked integrations, each with the tokens that still count: what the card,
the management API and ``manage.py list_integrations`` show (docs/tokens.md#integration-tokens).

Two queries whatever the number of integrations: the integrations, and their unrevoked tokens,
without the digest or any encrypted copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch
from django.utils import timezone

from profiles.access.models import Client
from profiles.tokens import expiry, permissions
from profiles.tokens.integrations import Integration
from profiles.tokens.models import ProfileToken

_SHOWN_FIELDS = (
    "id",
    "integration",
    "last_four",
    "created_at",
    "expires_at",
    "revoked_at",
    "grace_until",
    "last_used_at",
    "last_used_from",
)


@dataclass(frozen=True)
class ListedIntegration:
    """An integration with its current token (``None`` only in the moment after a revocation
    another request made) and its previous token while that one's grace period lasts."""

    integration: Integration
    token: ProfileToken | None
    previous: ProfileToken | None
    now: datetime

    @property
    def permission_names(self) -> list[str]:
        return permissions.names(self.integration.permissions)

    @property
    def expired(self) -> bool:
        return self.token is not None and self.token.is_expired(self.now)

    @property
    def last_used(self) -> str:
        """ "Last used 3 minutes ago from 203.0.113.5", or "Never used"."""
        return expiry.describe_last_used(self.last_used_at, self.last_used_from, self.now)

    @property
    def last_used_at(self) -> datetime | None:
        return self._last_used.last_used_at if self._last_used is not None else None

    @property
    def last_used_from(self) -> str | None:
        return self._last_used.last_used_from if self._last_used is not None else None

    @property
    def _last_used(self) -> ProfileToken | None:
        """Whichever of its working tokens was used last: "is anything still calling?"."""
        used = [t for t in (self.token, self.previous) if t is not None and t.last_used_at]
        return max(used, key=lambda t: t.last_used_at or t.created_at, default=None)


def integrations_of(
    client: Client, now: datetime | None = None, *, integration_id: int | None = None
) -> list[ListedIntegration]:
    """``client``'s unrevoked integrations by name (only ``integration_id``, if given)."""
    now = now or timezone.now()
    found = Integration.objects.filter(client=client).unrevoked()
    if integration_id is not None:
        found = found.filter(pk=integration_id)
    tokens = ProfileToken.objects.unrevoked().only(*_SHOWN_FIELDS).order_by("-created_at")
    listed = []
    for integration in found.prefetch_related(Prefetch("tokens", queryset=tokens)):
        held = list(integration.tokens.all())
        listed.append(
            ListedIntegration(
                integration,
                token=next((t for t in held if t.grace_until is None), None),
                previous=next((t for t in held if t.grace_until and t.valid_until > now), None),
                now=now,
            )
        )
    return listed
