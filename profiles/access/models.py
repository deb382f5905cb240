"""Clients, their members' roles, and the audit trail of every change (docs/concepts.md)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

if TYPE_CHECKING:
    from profiles.access.actors import Actor

# A client code (docs/concepts.md#clients): the one definition, used by the model's
# validator and by every front door that refuses a code no client can have unqueried.
CLIENT_CODE_MAX_LENGTH = 64
_CLIENT_CODE = re.compile(rf"[a-z0-9_-]{{1,{CLIENT_CODE_MAX_LENGTH}}}")

client_code_validator = RegexValidator(
    r"^[a-z0-9_-]+\Z",
    "A client code holds lowercase letters, digits, '-' and '_' only.",
)


def is_client_code(code: str) -> bool:
    """Whether some client could be named ``code``; anything else is never looked up."""
    return _CLIENT_CODE.fullmatch(code) is not None


class Role(models.IntegerChoices):
    """Adobe Target's four roles, in increasing order of power."""

    OBSERVER = 1, "Observer"
    EDITOR = 2, "Editor"
    PUBLISHER = 3, "Publisher"
    APPROVER = 4, "Approver"


class Client(models.Model):
    code = models.CharField(
        max_length=CLIENT_CODE_MAX_LENGTH, unique=True, validators=[client_code_validator]
    )
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("code",)

    def __str__(self) -> str:
        return self.code


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="memberships")
    role = models.PositiveSmallIntegerField(choices=Role.choices, default=Role.OBSERVER)

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=("user", "client"), name="one_membership_per_client"),
        )

    def __str__(self) -> str:
        return f"{self.user} is {self.get_role_display()} of {self.client}"


class ProviderIdentity(models.Model):
    """The identity provider's account behind a user who signs in with single sign-on
    (docs/operations.md#single-sign-on): its issuer and subject (``sub``) never change, even
    when the person's name or e-mail address does."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="provider_identity"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=("issuer", "subject"), name="one_user_per_subject"),
        )

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class AuditEvent(models.Model):
    class Action(models.TextChoices):
        AUTH_ENABLED = "auth_enabled", "Require Authentication enabled"
        AUTH_DISABLED = "auth_disabled", "Require Authentication disabled"
        TOKEN_GENERATED = "token_generated", "Token generated"
        TOKEN_REGENERATED = "token_regenerated", "Token re-generated"
        TOKEN_REVOKED = "token_revoked", "Token revoked"
        GRACE_STARTED = "grace_started", "Previous token's grace period started"
        GRACE_ENDED = "grace_ended", "Previous token's grace period ended"
        PREVIOUS_TOKEN_REVOKED = "previous_token_revoked", "Previous token revoked"
        REMINDER_SENT = "reminder_sent", "Expiry reminder sent"
        CLIENT_CREATED = "client_created", "Client created"
        ROLE_GRANTED = "role_granted", "Role granted"
        ROLE_REMOVED = "role_removed", "Role removed"
        ALLOWED_NETWORKS_CHANGED = "allowed_networks_changed", "Allowed networks changed"
        TOKEN_RETRIEVAL_ENABLED = "token_retrieval_enabled", "Token retrieval allowed"
        TOKEN_RETRIEVAL_DISABLED = "token_retrieval_disabled", "Token retrieval turned off"
        TOKEN_RETRIEVED = "token_retrieved", "Token retrieved"
        INTEGRATION_ADDED = "integration_added", "Integration token added"
        INTEGRATION_CHANGED = "integration_changed", "Integration token changed"
        INTEGRATION_REGENERATED = "integration_regenerated", "Integration token re-generated"
        INTEGRATION_REVOKED = "integration_revoked", "Integration token revoked"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="audit_events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_label = models.CharField(
        max_length=150, help_text="Who acted, kept when the user is deleted."
    )
    action = models.CharField(max_length=32, choices=Action.choices)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    token_last_four = models.CharField(max_length=4, blank=True)
    detail = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label}: {self.get_action_display()}"

    @classmethod
    def record(
        cls,
        client: Client,
        action: str,
        *,
        actor: Actor,
        token_last_four: str = "",
        detail: str = "",
    ) -> AuditEvent:
        return cls.objects.create(
            client=client,
            action=action,
            actor=actor.user,
            actor_label=actor.label,
            remote_addr=actor.address,
            token_last_four=token_last_four,
            detail=detail,
        )
