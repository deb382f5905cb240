from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from profiles.management.operator import (
    OperatorCommand,
    add_expiry_argument,
    expires_in_days,
    find_client,
)
from profiles.models import ProfileToken
from profiles.rules.errors import ProductError
from profiles.tokens import permissions


class Command(OperatorCommand):
    help = (
        "Add an integration token to a client (docs/tokens.md#integration-tokens). "
        "The token is printed once, alone on stdout; everything else goes to stderr."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("client", help="client code")
        parser.add_argument("name", help="the integration's name, unique within the client")
        parser.add_argument(
            "--permissions",
            required=True,
            metavar="LIST",
            help=f"comma-separated, from {', '.join(permissions.NAMES)}",
        )
        add_expiry_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        days = expires_in_days(options)
        try:
            granted = permissions.parse(
                name.strip() for name in options["permissions"].split(",") if name.strip()
            )
        except ValueError as refused:
            raise CommandError(f"--permissions: {refused}") from None
        client = find_client(options["client"])
        actor = self.operator(options)
        try:
            integration, token, plaintext = ProfileToken.objects.add_integration(
                client, name=options["name"], granted=granted, expires_in_days=days, actor=actor
            )
        except ValidationError as refused:
            raise CommandError(f"name: {' '.join(refused.messages)}") from None
        except ProductError as refused:
            raise CommandError(refused.message) from None
        self.stdout.write(plaintext)
        self.stderr.write(
            f"Integration token {integration.pk} {integration.name!r} ({token.masked}, "
            f"{', '.join(integration.permission_names)}) for {client.code} expires at "
            f"{token.expires_at.isoformat()}. It is shown only this once."
        )
