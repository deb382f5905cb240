from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from profiles.management.operator import find_client
from profiles.tokens.integration_listing import integrations_of


class Command(BaseCommand):
    help = "List a client's integration tokens, never their secrets."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("client", help="client code")

    def handle(self, *args: Any, **options: Any) -> None:
        client = find_client(options["client"])
        now = timezone.now()
        listed = integrations_of(client, now)
        if not listed:
            self.stdout.write(f"{client.code} has no integration tokens.")
        for entry in listed:
            token = entry.token
            shown = (
                f"{token.masked}, expires {token.expires_at.isoformat()}"
                if token is not None
                else "no token"
            )
            self.stdout.write(
                f"{entry.integration.pk}\t{entry.integration.name}\t"
                f"{','.join(entry.permission_names)}\t{shown}\t{entry.last_used}"
            )
