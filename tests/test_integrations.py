"""Integration tokens: a client's named tokens beside its own, each limited to what it may
call (docs/tokens.md#integration-tokens)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from profiles.access.actors import SYSTEM
from profiles.models import AuditEvent, Client, Integration, ProfileApiSettings, ProfileToken
from profiles.rules.errors import ErrorCode, ProductError
from profiles.tokens import permissions, secret, verification
from profiles.tokens.integrations import MAX_PER_CLIENT, clean_name
from profiles.tokens.models import TokenRejected
from profiles.tokens.permissions import Permission
from tests.integration_tokens import add_integration
from tests.profile_api import issue
from tests.test_postgresql_concurrency import all_at_once


def works(client: Client, plaintext: str) -> bool:
    try:
        verification.verify(client.pk, plaintext)
    except TokenRejected:
        return False
    return True


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


# Adding, changing, re-generating and revoking


def test_adding_shows_the_token_once_and_keeps_its_digest(demo: Client) -> None:
    integration, token, plaintext = ProfileToken.objects.add_integration(
        demo, name="  CRM sync ", granted=Permission.FETCH, expires_in_days=30, actor=SYSTEM
    )

    assert integration.name == "CRM sync"
    assert token.integration == integration
    assert token.digest == secret.digest(plaintext)
    assert token.ciphertext is None
    assert integration.permission_names == ["fetch"]


def test_an_integration_token_is_never_kept_even_when_the_clients_may_be(demo: Client) -> None:
    ProfileApiSettings.for_client(demo).set_token_retrievable(True, actor=SYSTEM)

    _, plaintext = add_integration(demo)

    assert ProfileToken.objects.get(digest=secret.digest(plaintext)).ciphertext is None


def test_adding_is_audited_with_the_name_and_the_last_four(demo: Client) -> None:
    _, plaintext = add_integration(demo, "fetch")

    event = AuditEvent.objects.get(client=demo)
    assert event.action == AuditEvent.Action.INTEGRATION_ADDED
    assert event.token_last_four == plaintext[-4:]
    assert "'CRM sync'" in event.detail


def test_a_client_has_at_most_twenty_unrevoked_integrations(demo: Client) -> None:
    for number in range(MAX_PER_CLIENT):
        add_integration(demo, name=f"integration {number}")

    with pytest.raises(ProductError) as refused:
        add_integration(demo, name="one too many")

    assert refused.value.code is ErrorCode.TOKEN_LIMIT
    assert Integration.objects.filter(client=demo).count() == MAX_PER_CLIENT


def test_a_revoked_integration_leaves_room_for_another(demo: Client) -> None:
    first, _ = add_integration(demo, name="integration 0")
    for number in range(1, MAX_PER_CLIENT):
        add_integration(demo, name=f"integration {number}")

    ProfileToken.objects.revoke_integration(first, actor=SYSTEM)

    assert add_integration(demo, name="integration 0")[0].pk != first.pk


def test_adding_a_name_the_client_already_has_is_refused(demo: Client) -> None:
    add_integration(demo, name="CRM sync")

    with pytest.raises(ProductError, match="already has an integration token named") as refused:
        add_integration(demo, name="CRM sync")

    assert refused.value.code is ErrorCode.INVALID


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, "tab\there", 7])
def test_a_name_must_be_printable_text_of_up_to_64_characters(name: object) -> None:
    with pytest.raises(ValidationError):
        clean_name(name)


def test_renaming_and_changing_permissions_is_audited(demo: Client) -> None:
    integration, _ = add_integration(demo, "fetch")

    changed = integration.change(actor=SYSTEM, name="web tier", granted=Permission.BATCH)

    assert changed
    integration.refresh_from_db()
    assert (integration.name, integration.permission_names) == ("web tier", ["batch"])
    event = AuditEvent.objects.filter(client=demo).first()
    assert event is not None
    assert event.action == AuditEvent.Action.INTEGRATION_CHANGED
    assert event.detail == "'web tier': renamed from 'CRM sync'; permissions: batch"


def test_a_change_to_nothing_new_is_not_audited(demo: Client) -> None:
    integration, _ = add_integration(demo, "fetch")

    assert not integration.change(actor=SYSTEM, name="CRM sync", granted=Permission.FETCH)
    assert AuditEvent.objects.filter(client=demo).count() == 1


def test_a_revoked_integration_cannot_be_changed_or_regenerated(demo: Client) -> None:
    integration, _ = add_integration(demo)
    ProfileToken.objects.revoke_integration(integration, actor=SYSTEM)

    with pytest.raises(ProductError) as not_changed:
        integration.change(actor=SYSTEM, name="new name")
    with pytest.raises(ProductError) as not_regenerated:
        ProfileToken.objects.issue(demo, integration=integration, expires_in_days=90, actor=SYSTEM)

    assert not_changed.value.code is ErrorCode.TOKEN_NOT_FOUND
    assert not_regenerated.value.code is ErrorCode.TOKEN_NOT_FOUND


def test_regenerating_replaces_only_that_integrations_token(demo: Client) -> None:
    _, own = issue(demo)
    crm, crm_first = add_integration(demo, name="CRM sync")
    _, web = add_integration(demo, name="web tier")

    _, crm_second = ProfileToken.objects.issue(
        demo, integration=crm, expires_in_days=90, actor=SYSTEM
    )

    assert not works(demo, crm_first)
    assert works(demo, crm_second)
    assert works(demo, web)
    assert works(demo, own)
    assert AuditEvent.objects.filter(client=demo).first().action == (  # type: ignore[union-attr]
        AuditEvent.Action.INTEGRATION_REGENERATED
    )


def test_regenerating_with_a_grace_period_keeps_the_old_token_working(demo: Client) -> None:
    crm, first = add_integration(demo)

    _, second = ProfileToken.objects.issue(
        demo,
        integration=crm,
        expires_in_days=90,
        actor=SYSTEM,
        previous_token_grace_seconds=3600,
    )

    assert works(demo, first)
    assert works(demo, second)


def test_the_clients_own_token_regenerates_without_touching_integration_tokens(
    demo: Client,
) -> None:
    _, crm = add_integration(demo)

    issue(demo)
    issue(demo)

    assert works(demo, crm)


def test_revoking_an_integration_ends_its_tokens_and_no_other(demo: Client) -> None:
    _, own_plaintext = issue(demo)
    crm, crm_first = add_integration(demo, name="CRM sync")
    _, crm_second = ProfileToken.objects.issue(
        demo, integration=crm, expires_in_days=90, actor=SYSTEM, previous_token_grace_seconds=60
    )
    _, web = add_integration(demo, name="web tier")

    assert ProfileToken.objects.revoke_integration(crm, actor=SYSTEM)

    assert not works(demo, crm_first)
    assert not works(demo, crm_second)
    assert works(demo, web)
    assert works(demo, own_plaintext)
    event = AuditEvent.objects.filter(client=demo).first()
    assert event is not None
    assert (event.action, event.token_last_four) == (
        AuditEvent.Action.INTEGRATION_REVOKED,
        crm_second[-4:],
    )


def test_revoking_twice_is_audited_once(demo: Client) -> None:
    crm, _ = add_integration(demo)

    assert ProfileToken.objects.revoke_integration(crm, actor=SYSTEM)
    assert not ProfileToken.objects.revoke_integration(crm, actor=SYSTEM)

    revoked = AuditEvent.Action.INTEGRATION_REVOKED
    assert AuditEvent.objects.filter(client=demo, action=revoked).count() == 1


def test_the_clients_own_token_commands_leave_integration_tokens_alone(demo: Client) -> None:
    _, crm = add_integration(demo)

    assert ProfileToken.objects.revoke_active(demo, actor=SYSTEM) is None
    assert works(demo, crm)


# Under concurrency (PostgreSQL: each thread has its own connection, as workers would)


def _adding(client: Client, name: str, refusals: list[ErrorCode]) -> Callable[[], None]:
    def add() -> None:
        try:
            add_integration(client, name=name)
        except ProductError as refused:
            refusals.append(refused.code)

    return add


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_additions_racing_for_the_last_place_leave_twenty(demo: Client) -> None:
    for number in range(MAX_PER_CLIENT - 1):
        add_integration(demo, name=f"integration {number}")
    refusals: list[ErrorCode] = []

    all_at_once([_adding(demo, f"racer {number}", refusals) for number in range(6)])

    assert Integration.objects.filter(client=demo).unrevoked().count() == MAX_PER_CLIENT
    assert refusals == [ErrorCode.TOKEN_LIMIT] * 5


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_additions_racing_for_one_name_make_one(demo: Client) -> None:
    refusals: list[ErrorCode] = []

    all_at_once([_adding(demo, "CRM sync", refusals) for _ in range(4)])

    assert Integration.objects.filter(client=demo, name="CRM sync").count() == 1
    assert refusals == [ErrorCode.INVALID] * 3
