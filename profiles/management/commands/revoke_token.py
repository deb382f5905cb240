from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from profiles.management.operator import OperatorCommand, find_client
from profiles.models import ProfileToken


class Command(OperatorCommand):
    help = "Revoke a client's token: calls that use it fail from the next request on."

    def add_arguments(self, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("client", help="client code")

    def handle(self, *args: Any, **options: Any) -> None:
        client = find_client(options["client"])
        actor, label = self.operator(options)
        token = ProfileToken.objects.revoke_active(client, actor=actor, actor_label=label)
        if token is None:
            self.stdout.write(f"{client.code} has no token to revoke.")
        else:
            self.stdout.write(f"Revoked token {token.masked} of {client.code}.")
