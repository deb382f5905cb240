from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from profiles.management.operator import OperatorCommand, find_client
from profiles.models import ProfileApiSettings


class Command(OperatorCommand):
    help = "Turn Require Authentication on or off for a client's profile APIs."

    def add_arguments(self, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("client", help="client code")
        parser.add_argument("state", choices=["on", "off"])

    def handle(self, *args: Any, **options: Any) -> None:
        client = find_client(options["client"])
        actor = self.operator(options)
        enabled = options["state"] == "on"
        changed = ProfileApiSettings.for_client(client).set_require_authentication(
            enabled, actor=actor
        )
        state = options["state"]
        if changed:
            self.stdout.write(f"Require Authentication is now {state} for {client.code}.")
        else:
            self.stdout.write(f"Require Authentication was already {state} for {client.code}.")
