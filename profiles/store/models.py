"""The visitor profile: one row per visitor and client (docs/concepts.md#profiles-and-attributes)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from profiles.rules.limits import MAX_ID_LENGTH


class Profile(models.Model):
    """One visitor's profile.

    ``attributes`` maps a name to ``{"value": str, "modifiedAt": ISO-8601 str}``. It is only
    ever changed by the merge statements in ``profiles.store``, never read-modify-written.
    """

    # No index of its own: the unique (client, key) indexes below lead with the client, so
    # every read by client uses theirs, and each write keeps one index fewer up to date.
    client = models.ForeignKey(
        "profiles.Client", on_delete=models.CASCADE, related_name="profiles", db_index=False
    )
    pc_id = models.CharField(max_length=64)
    # NULL, not "", for "none": NULLs never collide in the unique constraint below.
    third_party_id = models.CharField(max_length=MAX_ID_LENGTH, null=True, blank=True)  # noqa: DJ001
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
