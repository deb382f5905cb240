from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import CommandError

from profiles.access.clients import grant_role
from profiles.management.operator import OperatorCommand, find_client, find_user
from profiles.models import Role

ROLES = {role.label.lower(): role for role in Role}


class Command(OperatorCommand):
    help = "Give a user a role for a client, creating or changing their membership."

    def add_arguments(self, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("username")
        parser.add_argument("client", help="client code")
        parser.add_argument("role", help=", ".join(role.label for role in Role))

    def handle(self, *args: Any, **options: Any) -> None:
        role = ROLES.get(options["role"].lower())
        if role is None:
            choices = ", ".join(role.label for role in Role)
            raise CommandError(f"Unknown role {options['role']!r}; choose one of {choices}.")
        user = find_user(options["username"])
        client = find_client(options["client"])
        actor = self.operator(options)
        previous = grant_role(user, client, role, actor=actor)
        who = f"{user.get_username()} is {role.label} of {client.code}"
        if previous == role:
            self.stdout.write(f"{who} already; nothing changed.")
        elif previous is None:
            self.stdout.write(f"{who} (new member).")
        else:
            self.stdout.write(f"{who} (was {previous.label}).")
