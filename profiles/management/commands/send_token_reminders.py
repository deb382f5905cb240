"""Send the token expiry reminders due, once, or every N seconds (docs/tokens.md#expiry-reminders)."""

from __future__ import annotations

import signal
import threading
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections

from profiles.tokens import reminders, usage


class Command(BaseCommand):
    help = (
        "E-mail the Approvers of each client whose token expires within 7 days, within 1 day, "
        "or has expired (each reminder once per token), record ended grace periods and prune "
        f"token usage older than {usage.KEPT_DAYS} days. "
        "One sweep, or with --every N a sweep now and every N seconds until stopped "
        "(TERM or Ctrl-C end it after the sweep in progress)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--every",
            type=int,
            metavar="SECONDS",
            help="keep running: sweep at start and then every SECONDS (make run: 600)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        every = options["every"]
        if every is not None and every < 1:
            raise CommandError(f"--every must be at least 1 second, not {every}.")
        if every is None:
            self._sweep()
            return
        stop = threading.Event()
        for stopping in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stopping, lambda *_: stop.set())
        while not stop.is_set():
            try:
                self._sweep()
            except DatabaseError as error:
                # A database that is down or busy for a moment: the next sweep tries again.
                self.stderr.write(f"Sweep failed, retrying in {every} seconds: {error}")
            close_old_connections()
            stop.wait(every)

    def _sweep(self) -> None:
        done = reminders.sweep()
        self.stdout.write(
            f"Sent {len(done.reminders)} token reminder(s) in {done.emails} e-mail(s); "
            f"recorded {done.graces_ended} ended grace period(s); "
            f"pruned {done.usage_days_pruned} day(s) of token usage."
        )
        self.stdout.flush()
