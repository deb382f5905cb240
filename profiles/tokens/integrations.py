"""Integration tokens: a client's named tokens beside its own, each limited to what it may
call (docs/tokens.md#integration-tokens).

An :class:`Integration` is the lasting part (its name and permissions); each of its tokens is
a ``ProfileToken`` row pointing at it, so that re-generation, grace periods, expiry and last
use work exactly as for the client's own token (whose rows point at no integration). Adding,
re-generating and revoking go through ``ProfileToken.objects`` (``profiles.tokens.models``),
which issues the tokens. Every change is audited; at most :data:`MAX_PER_CLIENT`
integrations per client are unrevoked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone

from profiles.access.models import AuditEvent, Client
from profiles.rules.errors import ErrorCode, ProductError
from profiles.tokens import permissions

if TYPE_CHECKING:
    from profiles.access.actors import Actor

MAX_PER_CLIENT = 20
MAX_NAME_LENGTH = 64


def clean_name(name: object) -> str:
    """``name`` as an integration's name: text of 1 to :data:`MAX_NAME_LENGTH` printable
    characters, surrounding spaces dropped; else ``ValidationError``."""
    if not isinstance(name, str):
        raise ValidationError("must be text.")
    cleaned = name.strip()
    if not cleaned:
        raise ValidationError("must not be empty.")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise ValidationError(f"must be at most {MAX_NAME_LENGTH} characters.")
    if not cleaned.isprintable():
        raise ValidationError("must hold printable characters only.")
    return cleaned


def name_taken(client: Client, name: str) -> ProductError:
    return ProductError(
        ErrorCode.INVALID,
        f"name: client {client.code!r} already has an integration token named {name!r}.",
    )


class IntegrationQuerySet(models.QuerySet["Integration"]):
    def unrevoked(self) -> IntegrationQuerySet:
        return self.filter(revoked_at__isnull=True)


class Integration(models.Model):
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="integrations")
    name = models.CharField(max_length=MAX_NAME_LENGTH)
    # A bitmask of profiles.tokens.permissions.Permission, read by the gate with the token.
    permissions = models.PositiveSmallIntegerField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[IntegrationQuerySet] = IntegrationQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ("name", "id")
        constraints = (
            models.UniqueConstraint(
                fields=("client", "name"),
                condition=Q(revoked_at__isnull=True),
                name="one_unrevoked_integration_name_per_client",
            ),
            models.CheckConstraint(
                condition=Q(permissions__gte=1, permissions__lte=int(permissions.ALL)),
                name="integration_permissions_known",
            ),
        )

    def __str__(self) -> str:
        return f"{self.client}: {self.name}"

    @property
    def permission_names(self) -> list[str]:
        return permissions.names(self.permissions)

    def is_revoked_now(self) -> bool:
        """Whether it is revoked, as the database says now (another request may have)."""
        return not Integration.objects.filter(pk=self.pk).unrevoked().exists()

    def change(self, *, actor: Actor, name: str | None = None, granted: int | None = None) -> bool:
        """Rename it or change its permissions (``None``: unchanged), audited; its tokens
        keep working, with the new permissions from the next call. Returns whether anything
        changed."""
        changes: list[str] = []
        if name is not None:
            name = clean_name(name)
            if name != self.name:
                changes.append(f"renamed from {self.name!r}")
                self.name = name
        if granted is not None:
            granted = permissions.parse(permissions.names(granted))
            if granted != self.permissions:
                changes.append(f"permissions: {', '.join(permissions.names(granted))}")
                self.permissions = int(granted)
        if not changes:
            return False
        try:
            with transaction.atomic():
                if not Integration.objects.filter(pk=self.pk, revoked_at__isnull=True).update(
                    name=self.name, permissions=self.permissions
                ):
                    raise self.not_found()
                AuditEvent.record(
                    self.client,
                    AuditEvent.Action.INTEGRATION_CHANGED,
                    actor=actor,
                    detail=f"{self.name!r}: {'; '.join(changes)}"[:255],
                )
        except IntegrityError:
            raise name_taken(self.client, self.name) from None
        return True

    def not_found(self) -> ProductError:
        return ProductError(
            ErrorCode.TOKEN_NOT_FOUND,
            f"Client {self.client.code!r} has no integration token {self.pk}.",
        )
