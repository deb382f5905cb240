"""Delete batch records older than ``BATCH_RETENTION_DAYS`` (docs/operations.md#limits-and-retention), with their files."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from profiles.ingest.batches import Batch


class Command(BaseCommand):
    help = f"Delete batches older than BATCH_RETENTION_DAYS ({settings.BATCH_RETENTION_DAYS} days)."

    def handle(self, *args: Any, **options: Any) -> None:
        expired = Batch.objects.expired(timezone.now())
        for batch in expired.exclude(file_name=""):
            batch.delete_file()
        _, deleted = expired.delete()
        self.stdout.write(f"Deleted {deleted.get('profiles.Batch', 0)} batches.")
