"""The world the bad-input catalogue's calls are made in (tests/bad_input_catalogue.py): its
clients, profiles, batch and tokens, and each case's placeholders and settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from profiles.access.actors import SYSTEM
from profiles.ingest.batches import ApiVersion, Batch
from profiles.models import Client, Profile, ProfileApiSettings, ProfileToken
from profiles.tokens import secret
from tests.bad_input_catalogue import ACME_BATCH_ID, Case
from tests.integration_tokens import add_integration
from tests.profile_api import require_authentication
from tests.support import PASSWORD, basic_authorization


@pytest.fixture
def world(demo: Client, other_client: Client, alice: User, root: User) -> dict[str, str]:
    """demo and acme with a profile each, acme's batch, and the tokens the cases name."""
    Profile.objects.create(client=demo, pc_id="p1", third_party_id="u1", attributes={})
    Profile.objects.create(client=other_client, pc_id="acme-p1", attributes={})
    Batch.objects.create(
        id=ACME_BATCH_ID,
        client=other_client,
        api_version=ApiVersion.JSON,
        create_missing=False,
        batch_size=0,
    )
    _, acme_token = ProfileToken.objects.issue(other_client, expires_in_days=90, actor=SYSTEM)
    _, expired = ProfileToken.objects.issue(
        demo, expires_in_days=1, actor=SYSTEM, now=timezone.now() - timedelta(days=2)
    )
    _, revoked = ProfileToken.objects.issue(demo, expires_in_days=90, actor=SYSTEM)
    _, token = ProfileToken.objects.issue(demo, expires_in_days=90, actor=SYSTEM)
    _, fetch_token = add_integration(demo, "fetch", name="reader")
    _, batch_token = add_integration(demo, "batch", name="importer")
    acme_integration, _ = add_integration(other_client, name="acme sync")
    return {
        "token": token,
        "revoked_token": revoked,
        "expired_token": expired,
        "acme_token": acme_token,
        "fetch_token": fetch_token,
        "batch_token": batch_token,
        "acme_integration": str(acme_integration.pk),
        "unknown_token": secret.generate(),
        "acme_batch": ACME_BATCH_ID,
        "alice": basic_authorization("alice", PASSWORD),
        "alice_wrong": basic_authorization("alice", "wrong"),
    }


def filled(text: str, world: dict[str, str]) -> str:
    for name, value in world.items():
        text = text.replace(f"{{{name}}}", value)
    return text


def prepare(case: Case, world: dict[str, str], demo: Client, settings: Any) -> None:
    for name, value in case.settings.items():
        setattr(settings, name, value)
    if case.authentication:
        require_authentication(demo)
    if case.retrievable:
        ProfileApiSettings.for_client(demo).set_token_retrievable(True, actor=SYSTEM)
        ProfileToken.objects.issue(demo, expires_in_days=90, actor=SYSTEM)
    if "{expired_token}" in str(case.headers):
        # The expired token must be demo's newest, unrevoked one to be reported as expired.
        ProfileToken.objects.filter(client=demo).exclude(
            digest=secret.digest(world["expired_token"])
        ).delete()
        ProfileToken.objects.filter(client=demo).update(revoked_at=None)
