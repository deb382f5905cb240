"""Pieces of the management API's answers that more than one endpoint writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from profiles.tokens.models import ProfileToken


def isoformat(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def last_used(token: ProfileToken) -> dict[str, Any]:
    """A token's ``lastUsedAt`` and ``lastUsedFrom`` (docs/tokens.md#last-used)."""
    return {
        "lastUsedAt": isoformat(token.last_used_at),
        "lastUsedFrom": token.last_used_from,
    }
