"""Delete batch records older than ``BATCH_RETENTION_DAYS`` (docs/operations.md#limits-and-retention), with their files.

Stored files no batch names (an upload whose web process died mid-way) go too, a day on.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from profiles.ingest.batches import Batch, stray_files
from profiles.ingest.storage import batch_files

STRAY_FILE_AGE = timedelta(days=1)


class Command(BaseCommand):
    help = f"Delete batches older than BATCH_RETENTION_DAYS ({settings.BATCH_RETENTION_DAYS} days)."

    def handle(self, *args: Any, **options: Any) -> None:
        expired = Batch.objects.expired(timezone.now())
        for batch in expired.exclude(file_name=""):
            batch.delete_file()
        _, deleted = expired.delete()
        stray = stray_files(timezone.now() - STRAY_FILE_AGE)
        for name in stray:
            batch_files().delete(name)
        self.stdout.write(f"Deleted {deleted.get('profiles.Batch', 0)} batches.")
        if stray:
            self.stdout.write(f"Deleted {len(stray)} files of uploads that never became a batch.")
