"""Helpers shared by the integration token tests (docs/tokens.md#integration-tokens)."""

from __future__ import annotations

from profiles.access.actors import SYSTEM, Actor
from profiles.models import Client, Integration, ProfileToken
from profiles.tokens import permissions


def add_integration(
    client: Client,
    *granted: str,
    name: str = "CRM sync",
    days: int = 90,
    actor: Actor = SYSTEM,
) -> tuple[Integration, str]:
    """A new integration of ``client`` allowed ``granted`` (all three when none are named),
    and its token's plaintext."""
    integration, _, plaintext = ProfileToken.objects.add_integration(
        client,
        name=name,
        granted=permissions.parse(granted) if granted else permissions.ALL,
        expires_in_days=days,
        actor=actor,
    )
    return integration, plaintext


def bearer(plaintext: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}
