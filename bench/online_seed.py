"""Seed the online benchmark's database: ``python -m bench.online_seed PROFILES``.

Run by ``bench/online.py`` with the product's settings and a ``DATABASE_URL`` of its own.
Creates the tables, the clients ``auth-off`` (Require Authentication off) and ``auth-on``
(on, with a freshly issued token and a fetch-only integration token), the same ``PROFILES``
profiles in each, through the product's own ingest pipeline, and the empty clients that take
the benchmark's batch file. Prints one JSON line: the profiles' thirdPartyIds and the
plaintext tokens.
"""

from __future__ import annotations

import json
import sys

import django

# The clients this seeds, which bench/online.py then calls.
OPEN_CLIENT = "auth-off"
GUARDED_CLIENT = "auth-on"
# Clients that take the batch file: one applies it alone, one while single updates arrive.
BATCH_ALONE_CLIENT = "batch-alone"
BATCH_BUSY_CLIENT = "batch-busy"


def seed(profiles: int) -> dict[str, object]:
    from django.core.management import call_command
    from django.db import transaction

    from profiles.access.actors import Actor
    from profiles.ingest import pipeline
    from profiles.models import Client, ProfileApiSettings, ProfileToken
    from profiles.store import KeyKind
    from profiles.tokens.permissions import Permission

    call_command("migrate", verbosity=0, interactive=False)
    third_party_ids = [f"visitor-{number:06d}" for number in range(profiles)]
    rows = [
        pipeline.Row(
            position=number,
            profile_id=third_party_id,
            attributes={"tier": "silver", "visits": "1", "city": "Basel"},
        )
        for number, third_party_id in enumerate(third_party_ids, start=1)
    ]
    token = integration_token = ""
    seeder = Actor.named("online_seed")
    for code, require_authentication in ((OPEN_CLIENT, False), (GUARDED_CLIENT, True)):
        client = Client.objects.create(code=code, name=code)
        with transaction.atomic():
            outcome = pipeline.apply(client.pk, KeyKind.THIRD_PARTY_ID, rows, create_missing=True)
        if outcome.successful != profiles:
            raise SystemExit(f"seeding {code} stored {outcome.successful} of {profiles} profiles")
        if require_authentication:
            ProfileApiSettings.for_client(client).set_require_authentication(True, actor=seeder)
            _, token = ProfileToken.objects.issue(client, expires_in_days=1, actor=seeder)
            _, _, integration_token = ProfileToken.objects.add_integration(
                client, name="bench", granted=Permission.FETCH, expires_in_days=1, actor=seeder
            )
    for code in (BATCH_ALONE_CLIENT, BATCH_BUSY_CLIENT):
        Client.objects.create(code=code, name=code)
    return {
        "third_party_ids": third_party_ids,
        "token": token,
        "integration_token": integration_token,
    }


def main() -> None:
    django.setup()
    print(json.dumps(seed(int(sys.argv[1]))))


if __name__ == "__main__":
    main()
