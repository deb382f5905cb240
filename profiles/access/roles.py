"""Who may do what for which client (docs/concepts.md#roles)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.http import Http404

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


class NotAllowed(PermissionDenied):
    """A member of the client whose role is below the one an action needs."""

    def __init__(self, needed: Role, action: str = "do this") -> None:
        super().__init__(f"Only {needed.label}s can {action}.")
        self.needed = needed


def client_for(
    user: User, code: str, needed: Role, *, action: str = "do this"
) -> tuple[Client, Role]:
    """The client named ``code`` if ``user`` holds ``needed`` there.

    A user who is not a member gets 404, so client codes do not leak; a member below
    ``needed`` gets ``NotAllowed`` (403), whose message names ``action``.
    """
    client = Client.objects.filter(code=code).first()
    role = role_of(user, client) if client is not None else None
    if client is None or role is None:
        raise Http404("No such client.")
    if role < needed:
        raise NotAllowed(needed, action)
    return client, role
