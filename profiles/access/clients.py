"""Creating clients and granting roles: the operator's changes, each audited."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction

from profiles.access.models import AuditEvent, Client, Membership, Role

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from profiles.access.actors import Actor


def create_client(code: str, name: str, *, actor: Actor) -> Client:
    """Create a client; raises ``ValidationError`` for a bad or taken code."""
    client = Client(code=code, name=name)
    client.full_clean()
    with transaction.atomic():
        client.save()
        AuditEvent.record(
            client,
            AuditEvent.Action.CLIENT_CREATED,
            actor=actor,
            detail=f"named {name!r}",
        )
    return client


def grant_role(user: AbstractBaseUser, client: Client, role: Role, *, actor: Actor) -> Role | None:
    """Make ``user`` a ``role`` of ``client``, creating or changing the membership.

    Returns the role the user held before (None for a new member). Audited only when
    something changed.
    """
    with transaction.atomic():
        membership, created = Membership.objects.select_for_update().get_or_create(
            user_id=user.pk, client=client, defaults={"role": role}
        )
        previous = None if created else Role(membership.role)
        if previous == role:
            return previous
        membership.role = role
        membership.save(update_fields=["role"])
        change = f"was {previous.label}" if previous is not None else "new member"
        AuditEvent.record(
            client,
            AuditEvent.Action.ROLE_GRANTED,
            actor=actor,
            detail=f"{user.get_username()} is {role.label} ({change})",
        )
    return previous
