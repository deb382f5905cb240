from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import CommandError

from profiles.management.operator import (
    OperatorCommand,
    add_expiry_argument,
    expires_in_days,
    find_client,
)
from profiles.models import ProfileApiSettings, ProfileToken
from profiles.rules.errors import ProductError
from profiles.tokens import expiry


class Command(OperatorCommand):
    help = (
        "Generate a client's profile authentication token, revoking the previous one at once "
        "or after --previous-token-grace-seconds. "
        "The token is printed once, alone on stdout; everything else goes to stderr."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("client", help="client code")
        add_expiry_argument(parser)
        parser.add_argument(
            "--previous-token-grace-seconds",
            type=int,
            default=0,
            metavar="S",
            help=(
                "keep the current token working S more seconds, at most "
                f"{expiry.MAX_GRACE_SECONDS} (default 0: it stops at once)"
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = expires_in_days(options)
        grace = options["previous_token_grace_seconds"]
        if not 0 <= grace <= expiry.MAX_GRACE_SECONDS:
            raise CommandError(
                "--previous-token-grace-seconds must be between 0 and "
                f"{expiry.MAX_GRACE_SECONDS}, not {grace}."
            )
        client = find_client(options["client"])
        actor = self.operator(options)
        try:
            token, plaintext = ProfileToken.objects.issue(
                client,
                expires_in_days=days,
                actor=actor,
                previous_token_grace_seconds=grace,
            )
        except ProductError as refused:  # retrieval on and no key: nothing was issued
            raise CommandError(refused.message) from None
        self.stdout.write(plaintext)
        previous = (
            ProfileToken.objects.of_client(client).in_grace(token.created_at).first()
            if grace
            else None
        )
        if previous is None:
            then = "any previous token no longer works."
        else:
            then = (
                f"the previous token {previous.masked} keeps working until "
                f"{previous.valid_until.isoformat()} (`revoke_token {client.code} --previous` "
                "ends it sooner)."
            )
        self.stderr.write(
            f"Token {token.masked} for {client.code} expires at {token.expires_at.isoformat()}. "
            f"It is shown only this once; {then}"
        )
        if not ProfileApiSettings.for_client(client).require_authentication:
            self.stderr.write(
                f"Require Authentication is off for {client.code}: the profile APIs accept "
                f"calls without a token until `set_authentication {client.code} on`."
            )
