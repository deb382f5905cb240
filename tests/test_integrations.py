"""Integration tokens: a client's named tokens beside its own, each limited to what it may
call (docs/tokens.md#integration-tokens)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from profiles.models import Client, Integration, ProfileToken
from profiles.tokens import permissions, secret
from profiles.tokens.permissions import Permission
from tests.profile_api import issue


def crm_sync(
    client: Client, granted: int = Permission.FETCH, name: str = "CRM sync"
) -> Integration:
    return Integration.objects.create(client=client, name=name, permissions=granted)


# Permissions on the wire


def test_permissions_are_named_in_one_order_whatever_order_they_were_given() -> None:
    granted = permissions.parse(["batch", "fetch", "batch"])

    assert granted == Permission.FETCH | Permission.BATCH
    assert permissions.names(granted) == ["fetch", "batch"]
    assert permissions.names(permissions.ALL) == ["fetch", "update", "batch"]


@pytest.mark.parametrize("given", [[], ["read"], ["FETCH"], [1], [None]])
def test_it_refuses_no_permission_or_an_unknown_one(given: list[object]) -> None:
    with pytest.raises(ValueError, match="fetch"):
        permissions.parse(given)


def test_a_permission_is_allowed_only_when_granted() -> None:
    assert permissions.allows(Permission.FETCH | Permission.UPDATE, Permission.UPDATE)
    assert not permissions.allows(Permission.FETCH, Permission.BATCH)


# The model


def test_a_name_is_unique_among_a_clients_unrevoked_integrations(
    demo: Client, other_client: Client
) -> None:
    crm_sync(demo)
    crm_sync(other_client)

    with pytest.raises(IntegrityError), transaction.atomic():
        crm_sync(demo)


def test_a_revoked_integrations_name_can_be_used_again(demo: Client) -> None:
    crm_sync(demo, name="CRM sync")
    Integration.objects.filter(client=demo).update(revoked_at=timezone.now())

    assert crm_sync(demo, name="CRM sync").pk


@pytest.mark.parametrize("granted", [0, 8])
def test_the_database_refuses_permissions_outside_the_three(demo: Client, granted: int) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        crm_sync(demo, granted=granted)


def stored_token(integration: Integration) -> ProfileToken:
    plaintext = secret.generate()
    return ProfileToken.objects.create(
        client=integration.client,
        integration=integration,
        digest=secret.digest(plaintext),
        last_four=secret.last_four(plaintext),
        expires_at=timezone.now() + timedelta(days=90),
    )


def test_an_integration_token_and_the_clients_token_are_current_together(demo: Client) -> None:
    issue(demo)
    stored_token(crm_sync(demo))
    stored_token(crm_sync(demo, name="web tier"))

    assert ProfileToken.objects.filter(client=demo).current().count() == 3


def test_an_integration_has_one_current_token(demo: Client) -> None:
    integration = crm_sync(demo)
    stored_token(integration)

    with pytest.raises(IntegrityError), transaction.atomic():
        stored_token(integration)
