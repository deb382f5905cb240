from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.utils import timezone

from profiles.management.operator import OperatorCommand, find_client
from profiles.models import ProfileToken


class Command(OperatorCommand):
    help = (
        "Revoke a client's token: calls that use it fail from the next request on. "
        "With --previous, revoke the previous token in its grace period instead."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("client", help="client code")
        parser.add_argument(
            "--previous",
            action="store_true",
            help="end the grace period of the previous token now (the screen's Revoke now)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        client = find_client(options["client"])
        actor = self.operator(options)
        if options["previous"]:
            previous = ProfileToken.objects.revoke_previous(client, actor=actor)
            if previous is None:
                self.stdout.write(f"{client.code} has no previous token in its grace period.")
            else:
                self.stdout.write(f"Revoked the previous token {previous.masked} of {client.code}.")
            return
        token = ProfileToken.objects.revoke_active(client, actor=actor)
        if token is None:
            self.stdout.write(f"{client.code} has no token to revoke.")
        else:
            self.stdout.write(f"Revoked token {token.masked} of {client.code}.")
        still = ProfileToken.objects.of_client(client).in_grace(timezone.now()).first()
        if still is not None:
            self.stdout.write(
                f"The previous token {still.masked} still works until "
                f"{still.valid_until.isoformat()}; `revoke_token {client.code} --previous` "
                "ends it now."
            )
