"""Profile lifetime: profiles not updated for PROFILE_LIFETIME_DAYS go away.

See docs/operations.md#limits-and-retention.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from profiles.store.models import Profile

PURGE_BATCH_SIZE = 1_000


def expiry_cutoff(now: datetime | None = None) -> datetime:
    """Profiles last modified before this instant have outlived PROFILE_LIFETIME_DAYS."""
    return (now or timezone.now()) - timedelta(days=settings.PROFILE_LIFETIME_DAYS)


def purge_expired_profiles(cutoff: datetime, batch_size: int = PURGE_BATCH_SIZE) -> Iterator[int]:
    """Delete profiles last modified before ``cutoff``, yielding each batch's count.

    Each batch is its own short transaction, so writers are never held up for long, and
    the delete re-checks ``modified_at``: a profile updated after it was picked is kept.
    That makes the purge safe to run at any time, next to live traffic or another purge.
    """
    while True:
        with transaction.atomic():
            picked = list(
                Profile.objects.filter(modified_at__lt=cutoff)
                .order_by()
                .values_list("pk", flat=True)[:batch_size]
            )
            if not picked:
                return
            deleted, _ = Profile.objects.filter(pk__in=picked, modified_at__lt=cutoff).delete()
        yield deleted
