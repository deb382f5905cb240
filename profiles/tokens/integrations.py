"""Integration tokens: a client's named tokens beside its own, each limited to what it may
call (docs/tokens.md#integration-tokens).

An :class:`Integration` is the lasting part (its name and permissions); each of its tokens is
a ``ProfileToken`` row pointing at it, so that re-generation, grace periods, expiry and last
use work exactly as for the client's own token (whose rows point at no integration).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from profiles.access.models import Client
from profiles.tokens import permissions

MAX_PER_CLIENT = 20
MAX_NAME_LENGTH = 64


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
