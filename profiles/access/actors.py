"""Who acted: the one value every audited change carries (docs/concepts.md#audit-events).

Each way in builds it once and passes it down: a page, the Django admin or the management
API from its request (the signed-in user and the caller's address), a command from its
operator (``profiles.management.operator``), a sweep as :data:`SYSTEM`. The model methods
hand it to ``AuditEvent.record`` as it came.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted (``user``: ``None`` when no signed-in person did), from where
    (``address``: ``None`` away from a request), and how the audit trail names them
    (``label``, kept when the user is deleted)."""

    user: User | None
    address: str | None
    label: str

    @classmethod
    def person(
        cls, user: AbstractBaseUser | AnonymousUser | None, address: str | None = None
    ) -> Actor:
        """A person, named by their username; a request's anonymous user is nobody."""
        if isinstance(user, get_user_model()):
            return cls(user, address, user.get_username())
        return cls(None, address, "anonymous")

    @classmethod
    def named(cls, label: str) -> Actor:
        """No signed-in person: a command run without ``--actor``, the demo seeding, a sweep."""
        return cls(None, None, label)


# Who changes what no person asked for at that moment (a grace period running out, reminders).
SYSTEM = Actor.named("targetadmin")
