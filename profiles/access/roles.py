"""Who may do what for which client (docs/concepts.md#roles)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from profiles.access.models import Client, Membership, Role

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
    from django.db.models import QuerySet

    User = AbstractBaseUser | AnonymousUser


def role_of(user: User, client: Client) -> Role | None:
    """The user's role for the client; superusers act as Approver of every client."""
    if not user.is_authenticated or not user.is_active:
        return None
    if getattr(user, "is_superuser", False):
        return Role.APPROVER
    role = (
        Membership.objects.filter(user_id=user.pk, client=client)
        .values_list("role", flat=True)
        .first()
    )
    return Role(role) if role is not None else None


def clients_of(user: User) -> QuerySet[Client]:
    if not user.is_authenticated:
        return Client.objects.none()
    if getattr(user, "is_superuser", False):
        return Client.objects.all()
    return Client.objects.filter(memberships__user_id=user.pk)
