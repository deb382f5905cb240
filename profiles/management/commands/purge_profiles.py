"""``manage.py purge_profiles``: delete profiles not updated for PROFILE_LIFETIME_DAYS."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from profiles.store.retention import PURGE_BATCH_SIZE, expiry_cutoff, purge_expired_profiles


class Command(BaseCommand):
    help = (
        "Delete visitor profiles not updated for PROFILE_LIFETIME_DAYS days, in batches. "
        "Safe to run at any time, e.g. hourly from cron."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=PURGE_BATCH_SIZE,
            help=f"Profiles deleted per transaction (default {PURGE_BATCH_SIZE}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size: int = options["batch_size"]
        if batch_size < 1:
            self.stderr.write("--batch-size must be at least 1.")
            raise SystemExit(2)
        cutoff = expiry_cutoff()
        total = 0
        batches = 0
        for deleted in purge_expired_profiles(cutoff, batch_size):
            total += deleted
            batches += 1
            if options["verbosity"] >= 2:
                self.stdout.write(f"batch {batches}: deleted {deleted} profiles")
        self.stdout.write(
            f"Purged {total} profiles in {batches} batches: not updated since "
            f"{cutoff.isoformat()} (PROFILE_LIFETIME_DAYS={settings.PROFILE_LIFETIME_DAYS})."
        )
