from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import CommandError

from profiles.management.operator import OperatorCommand, find_client
from profiles.models import ProfileApiSettings, ProfileToken
from profiles.tokens import expiry


class Command(OperatorCommand):
    help = (
        "Generate a client's profile authentication token, revoking the previous one. "
        "The token is printed once, alone on stdout; everything else goes to stderr."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("client", help="client code")
        parser.add_argument(
            "--expires-in-days",
            type=int,
            default=expiry.default_days(),
            metavar="N",
            help=f"one of {expiry.choices_text()} (default {expiry.default_days()})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["expires_in_days"]
        if days not in expiry.choices():
            raise CommandError(
                f"--expires-in-days must be one of {expiry.choices_text()}, not {days}."
            )
        client = find_client(options["client"])
        actor, label = self.operator(options)
        token, plaintext = ProfileToken.objects.issue(
            client, expires_in_days=days, actor=actor, actor_label=label
        )
        self.stdout.write(plaintext)
        self.stderr.write(
            f"Token {token.masked} for {client.code} expires at {token.expires_at.isoformat()}. "
            "It is shown only this once; any previous token no longer works."
        )
        if not ProfileApiSettings.for_client(client).require_authentication:
            self.stderr.write(
                f"Require Authentication is off for {client.code}: the profile APIs accept "
                f"calls without a token until `set_authentication {client.code} on`."
            )
