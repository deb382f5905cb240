from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from profiles.access.clients import create_client
from profiles.management.operator import OperatorCommand


class Command(OperatorCommand):
    help = "Create a client (a tenant) named by its client code."

    def add_arguments(self, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("code", help="client code: lowercase letters, digits, '-' and '_'")
        parser.add_argument("--name", help="display name (default: the code)")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = self.operator(options)
        code = options["code"]
        try:
            client = create_client(code, options["name"] or code, actor=actor)
        except ValidationError as error:
            problems = " ".join(
                message for messages in error.message_dict.values() for message in messages
            )
            raise CommandError(f"Cannot create client {code!r}: {problems}") from None
        self.stdout.write(f"Created client {client.code} ({client.name}).")
