"""Profile API settings and profile tokens: the stored half of docs/tokens.md."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from profiles.access.models import AuditEvent, Client, actor_user
from profiles.tokens import expiry, secret

if TYPE_CHECKING:
    from profiles.access.models import Actor


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
            self.changed_by = actor_user(actor)
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
        if expires_in_days not in expiry.choices():
            raise ValueError(f"expires_in_days must be one of {expiry.choices_text()}")
        now = now or timezone.now()
        plaintext = secret.generate()
        with transaction.atomic():
            replaced = self.filter(client=client).unrevoked().update(revoked_at=now)
            token = self.create(
                client=client,
                digest=secret.digest(plaintext),
                last_four=secret.last_four(plaintext),
                created_by=actor_user(actor),
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
        return secret.mask(self.last_four)

    def check_usable_by(self, client_id: int | None, now: datetime | None = None) -> None:
        """Raise ``TokenRejected`` unless this is ``client_id``'s unrevoked, unexpired token."""
        if self.client_id != client_id or self.revoked_at is not None:
            raise TokenRejected("invalid", self.last_four)
        if self.is_expired(now):
            raise TokenRejected("expired", self.last_four)

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at <= (now or timezone.now())

    def time_remaining(self, now: datetime | None = None) -> timedelta:
        return max(self.expires_at - (now or timezone.now()), timedelta(0))
