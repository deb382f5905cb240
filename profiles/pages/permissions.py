"""Which client a page is about, and whether its visitor may open it (docs/concepts.md#roles).

A visitor who is not a member of the client gets 404, so client codes do not leak; a member
below the role a page needs gets 403, saying which role it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.http import Http404

from profiles.access.models import Client, Role
from profiles.access.roles import role_of

if TYPE_CHECKING:
    from profiles.access.roles import User


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
