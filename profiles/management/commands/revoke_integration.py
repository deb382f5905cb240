from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import CommandError

from profiles.management.operator import OperatorCommand, find_client
from profiles.models import Integration, ProfileToken


class Command(OperatorCommand):
    help = (
        "Revoke one of a client's integration tokens: calls that use it fail from the next "
        "request on; the client's token and its other integration tokens keep working."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("client", help="client code")
        parser.add_argument("id", type=int, help="the integration token's id (list_integrations)")

    def handle(self, *args: Any, **options: Any) -> None:
        client = find_client(options["client"])
        actor = self.operator(options)
        integration = Integration.objects.filter(client=client, pk=options["id"]).first()
        if integration is None or integration.revoked_at is not None:
            raise CommandError(f"{client.code} has no integration token {options['id']}.")
        ProfileToken.objects.revoke_integration(integration, actor=actor)
        self.stdout.write(f"Revoked integration token {integration.pk} {integration.name!r}.")
