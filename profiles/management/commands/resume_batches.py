"""Resume batches whose worker died; mark those that cannot make progress ``stuck``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from profiles import tasks
from profiles.ingest.batches import Status


class Command(BaseCommand):
    help = "Enqueue stalled batches again (or mark them stuck after BATCH_MAX_ATTEMPTS)."

    def handle(self, *args: Any, **options: Any) -> None:
        batches = tasks.resume_stalled()
        stuck = sum(batch.status == Status.STUCK for batch in batches)
        self.stdout.write(f"Resumed {len(batches) - stuck} batches; {stuck} stuck.")
