from __future__ import annotations

from argparse import ArgumentParser
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from profiles.management.operator import find_client
from profiles.models import AuditEvent, Client, ProfileApiSettings, ProfileToken
from profiles.tokens import expiry


class Command(BaseCommand):
    help = "Show a client's Require Authentication setting and token, never the secret."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("client", help="client code")

    def handle(self, *args: Any, **options: Any) -> None:
        client = find_client(options["client"])
        now = timezone.now()
        required = ProfileApiSettings.for_client(client).require_authentication
        self.stdout.write(f"Client: {client.code} ({client.name})")
        self.stdout.write(f"Require Authentication: {'on' if required else 'off'}")
        tokens = ProfileToken.objects.of_client(client)
        token = tokens.current().first()
        previous = tokens.in_grace(now).first()
        if token is None:
            self.stdout.write("Token: none")
        else:
            self._describe(client, token, now)
        if previous is not None:
            stops_in = expiry.describe_remaining(previous.valid_until - now)
            self.stdout.write(f"Previous token: {previous.masked} (in its grace period)")
            self.stdout.write(f"Stops working: {previous.valid_until.isoformat()} (in {stops_in})")
            self.stdout.write(f"Previous token last used: {self._used(previous, now)}")

    @staticmethod
    def _used(token: ProfileToken, now: datetime) -> str:
        """ "3 minutes ago from 203.0.113.5 (2026-…)", or "never"."""
        if token.last_used_at is None:
            return "never"
        said = token.last_used(now).removeprefix("Last used ")
        return f"{said} ({token.last_used_at.isoformat()})"

    def _describe(self, client: Client, token: ProfileToken, now: datetime) -> None:
        generated = (
            AuditEvent.objects.filter(client=client, token_last_four=token.last_four)
            .filter(
                action__in=[AuditEvent.Action.TOKEN_GENERATED, AuditEvent.Action.TOKEN_REGENERATED]
            )
            .first()
        )
        creator = generated.actor_label if generated else "unknown"
        state = "expired" if token.is_expired(now) else "active"
        self.stdout.write(f"Token: {token.masked} ({state})")
        self.stdout.write(f"Generated: {token.created_at.isoformat()} by {creator}")
        self.stdout.write(f"Expires: {token.expires_at.isoformat()}")
        self.stdout.write(f"Expires in: {expiry.describe_remaining(token.time_remaining(now))}")
        self.stdout.write(f"Last used: {self._used(token, now)}")
