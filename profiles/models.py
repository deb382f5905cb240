"""Clients, roles, Profile API settings, tokens, audit events and visitor profiles."""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from profiles import tokens

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    Actor = AbstractBaseUser | AnonymousUser | None

client_code_validator = RegexValidator(
    r"^[a-z0-9_-]+\Z",
    "A client code holds lowercase letters, digits, '-' and '_' only.",
)


class Role(models.IntegerChoices):
    """Adobe Target's four roles, in increasing order of power."""

    OBSERVER = 1, "Observer"
    EDITOR = 2, "Editor"
    PUBLISHER = 3, "Publisher"
    APPROVER = 4, "Approver"


class Client(models.Model):
    code = models.CharField(max_length=64, unique=True, validators=[client_code_validator])
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


def _actor_user(actor: Actor) -> Any:
    return actor if actor is not None and actor.is_authenticated else None


class AuditEvent(models.Model):
    class Action(models.TextChoices):
        AUTH_ENABLED = "auth_enabled", "Require Authentication enabled"
        AUTH_DISABLED = "auth_disabled", "Require Authentication disabled"
        TOKEN_GENERATED = "token_generated", "Token generated"
        TOKEN_REGENERATED = "token_regenerated", "Token re-generated"
        TOKEN_REVOKED = "token_revoked", "Token revoked"
        CLIENT_CREATED = "client_created", "Client created"
        ROLE_GRANTED = "role_granted", "Role granted"

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
        remote_addr: str | None = None,
        actor_label: str = "",
        token_last_four: str = "",
        detail: str = "",
    ) -> AuditEvent:
        user = _actor_user(actor)
        return cls.objects.create(
            client=client,
            action=action,
            actor=user,
            actor_label=actor_label or (user.get_username() if user else "anonymous"),
            remote_addr=remote_addr,
            token_last_four=token_last_four,
            detail=detail,
        )


class ProfileApiSettings(models.Model):
    client = models.OneToOneField(
        Client, on_delete=models.CASCADE, primary_key=True, related_name="profile_api_settings"
    )
    require_authentication = models.BooleanField(default=False)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "Profile API settings"
        verbose_name_plural = "Profile API settings"

    def __str__(self) -> str:
        state = "on" if self.require_authentication else "off"
        return f"{self.client}: authentication {state}"

    @classmethod
    def for_client(cls, client: Client) -> ProfileApiSettings:
        found, _ = cls.objects.get_or_create(client=client)
        return found

    def set_require_authentication(
        self,
        enabled: bool,
        *,
        actor: Actor,
        remote_addr: str | None = None,
        actor_label: str = "",
    ) -> bool:
        """Turn authentication on or off; audited. Returns whether anything changed."""
        if self.require_authentication == enabled:
            return False
        with transaction.atomic():
            self.require_authentication = enabled
            self.changed_by = _actor_user(actor)
            self.changed_at = timezone.now()
            self.save()
            AuditEvent.record(
                self.client,
                AuditEvent.Action.AUTH_ENABLED if enabled else AuditEvent.Action.AUTH_DISABLED,
                actor=actor,
                remote_addr=remote_addr,
                actor_label=actor_label,
            )
        return True


class TokenRejected(Exception):
    """A presented token cannot be used. ``reason`` is 'invalid' or 'expired'."""

    def __init__(self, reason: str, last_four: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.last_four = last_four


class ProfileTokenQuerySet(models.QuerySet["ProfileToken"]):
    def unrevoked(self) -> ProfileTokenQuerySet:
        return self.filter(revoked_at__isnull=True)

    def active(self, now: datetime | None = None) -> ProfileTokenQuerySet:
        return self.unrevoked().filter(expires_at__gt=now or timezone.now())

    def issue(
        self,
        client: Client,
        *,
        expires_in_days: int,
        actor: Actor,
        remote_addr: str | None = None,
        actor_label: str = "",
        now: datetime | None = None,
    ) -> tuple[ProfileToken, str]:
        """Create the client's new token, revoking the previous one in the same transaction.

        Returns the stored token and its plaintext; the plaintext exists only in the
        return value and is never stored.
        """
        if expires_in_days not in settings.TOKEN_EXPIRY_CHOICES_DAYS:
            raise ValueError(f"expires_in_days must be one of {settings.TOKEN_EXPIRY_CHOICES_DAYS}")
        now = now or timezone.now()
        plaintext = tokens.generate()
        with transaction.atomic():
            replaced = self.filter(client=client).unrevoked().update(revoked_at=now)
            token = self.create(
                client=client,
                digest=tokens.digest(plaintext),
                last_four=tokens.last_four(plaintext),
                created_by=_actor_user(actor),
                created_at=now,
                expires_at=now + timedelta(days=expires_in_days),
            )
            AuditEvent.record(
                client,
                AuditEvent.Action.TOKEN_REGENERATED
                if replaced
                else AuditEvent.Action.TOKEN_GENERATED,
                actor=actor,
                remote_addr=remote_addr,
                actor_label=actor_label,
                token_last_four=token.last_four,
                detail=f"expires in {expires_in_days} days",
            )
        return token, plaintext

    def revoke_active(
        self,
        client: Client,
        *,
        actor: Actor,
        remote_addr: str | None = None,
        actor_label: str = "",
    ) -> ProfileToken | None:
        with transaction.atomic():
            token = self.filter(client=client).unrevoked().select_for_update().first()
            if token is None:
                return None
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            AuditEvent.record(
                client,
                AuditEvent.Action.TOKEN_REVOKED,
                actor=actor,
                remote_addr=remote_addr,
                actor_label=actor_label,
                token_last_four=token.last_four,
            )
        return token

    def matching(self, candidate: str) -> ProfileToken | None:
        """The stored token ``candidate`` is, with its client and the client's settings.

        ``None`` for a malformed candidate (no query) or an unknown one (one indexed query).
        The joined client and settings let an API call resolve everything it needs about
        the caller in this single query.
        """
        try:
            tokens.check_format(candidate)
        except tokens.MalformedToken:
            return None
        presented = tokens.digest(candidate)
        token = self.select_related("client__profile_api_settings").filter(digest=presented).first()
        if token is None or not hmac.compare_digest(token.digest, presented):
            return None
        return token

    def verify(self, client_id: int, candidate: str, now: datetime | None = None) -> ProfileToken:
        """Return the client's active token matching ``candidate`` or raise ``TokenRejected``.

        A malformed candidate costs no query; a well-formed one costs one indexed query.
        """
        token = self.matching(candidate)
        if token is None:
            well_formed = tokens.is_well_formed(candidate)
            raise TokenRejected("invalid", tokens.last_four(candidate) if well_formed else "")
        token.check_usable_by(client_id, now)
        return token


class ProfileToken(models.Model):
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="tokens")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    last_four = models.CharField(max_length=4, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[ProfileTokenQuerySet] = ProfileTokenQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ("-created_at",)
        constraints = (
            models.UniqueConstraint(
                fields=("client",),
                condition=Q(revoked_at__isnull=True),
                name="one_unrevoked_token_per_client",
            ),
        )

    def __str__(self) -> str:
        return f"{self.client}: {self.masked}"

    @property
    def masked(self) -> str:
        return tokens.mask(self.last_four)

    def check_usable_by(self, client_id: int, now: datetime | None = None) -> None:
        """Raise ``TokenRejected`` unless this is ``client_id``'s unrevoked, unexpired token."""
        if self.client_id != client_id or self.revoked_at is not None:
            raise TokenRejected("invalid", self.last_four)
        if self.is_expired(now):
            raise TokenRejected("expired", self.last_four)

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at <= (now or timezone.now())

    def time_remaining(self, now: datetime | None = None) -> timedelta:
        return max(self.expires_at - (now or timezone.now()), timedelta(0))


class Profile(models.Model):
    """One visitor's profile.

    ``attributes`` maps a name to ``{"value": str, "modifiedAt": ISO-8601 str}``. It is only
    ever changed by the merge statements in ``profiles.store``, never read-modify-written.
    """

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="profiles")
    pc_id = models.CharField(max_length=64)
    # NULL, not "", for "none": NULLs never collide in the unique constraint below.
    third_party_id = models.CharField(max_length=256, null=True, blank=True)  # noqa: DJ001
    attributes = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    modified_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=("client", "pc_id"), name="unique_pc_id_per_client"),
            models.UniqueConstraint(
                fields=("client", "third_party_id"), name="unique_third_party_id_per_client"
            ),
        )

    def __str__(self) -> str:
        return f"{self.client}/{self.pc_id}"


# Bulk ingestion's models live in their own module; importing them here registers them.
from profiles.batches import Batch, BatchFailure  # noqa: E402, F401
