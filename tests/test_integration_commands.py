"""``manage.py`` commands for integration tokens (docs/management-api.md#command-line)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from profiles.models import AuditEvent, Client, Integration, ProfileToken
from profiles.tokens import secret
from tests.integration_tokens import add_integration


def run(*arguments: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*arguments, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_add_prints_the_token_alone_on_stdout(demo: Client) -> None:
    out, err = run("add_integration", "demo", "CRM sync", "--permissions", "fetch,batch")

    plaintext = out.strip()
    assert secret.is_well_formed(plaintext)
    integration = Integration.objects.get(client=demo)
    assert (integration.name, integration.permission_names) == ("CRM sync", ["fetch", "batch"])
    assert ProfileToken.objects.get(integration=integration).digest == secret.digest(plaintext)
    assert plaintext not in err
    assert f"…{plaintext[-4:]}" in err
    event = AuditEvent.objects.get(client=demo)
    assert (event.action, event.actor_label[:4]) == (AuditEvent.Action.INTEGRATION_ADDED, "cli:")


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (("--permissions", "fetch,delete"), "--permissions: each permission must be one of"),
        (("--permissions", ","), "--permissions: give at least one permission"),
        (("--permissions", "fetch", "--expires-in-days", "2"), "--expires-in-days must be one of"),
    ],
)
def test_add_refuses_bad_arguments_changing_nothing(
    demo: Client, arguments: tuple[str, ...], problem: str
) -> None:
    with pytest.raises(CommandError, match=problem):
        run("add_integration", "demo", "CRM sync", *arguments)

    assert not Integration.objects.exists()


def test_add_refuses_a_name_taken_or_empty(demo: Client) -> None:
    add_integration(demo, name="CRM sync")

    with pytest.raises(CommandError, match="already has an integration token named"):
        run("add_integration", "demo", "CRM sync", "--permissions", "fetch")
    with pytest.raises(CommandError, match="name: must not be empty"):
        run("add_integration", "demo", " ", "--permissions", "fetch")


def test_add_refuses_an_unknown_client(db: None) -> None:
    with pytest.raises(CommandError, match="Unknown client 'nope'"):
        run("add_integration", "nope", "CRM sync", "--permissions", "fetch")


def test_list_shows_each_token_masked_never_the_secret(demo: Client) -> None:
    crm, crm_plaintext = add_integration(demo, "fetch", name="CRM sync")
    add_integration(demo, "batch", name="web tier")

    out, _ = run("list_integrations", "demo")

    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{crm.pk}\tCRM sync\tfetch\ttpa_…{crm_plaintext[-4:]}, expires ")
    assert lines[0].endswith("Never used")
    assert "\tweb tier\tbatch\t" in lines[1]
    assert crm_plaintext not in out


def test_list_says_when_there_is_none(demo: Client) -> None:
    assert run("list_integrations", "demo")[0] == "demo has no integration tokens.\n"


def test_revoke_ends_that_token_only(demo: Client) -> None:
    crm, _ = add_integration(demo, name="CRM sync")
    web, _ = add_integration(demo, name="web tier")

    out, _ = run("revoke_integration", "demo", str(crm.pk))

    assert out == f"Revoked integration token {crm.pk} 'CRM sync'.\n"
    crm.refresh_from_db()
    web.refresh_from_db()
    assert crm.revoked_at is not None
    assert web.revoked_at is None
    assert ProfileToken.objects.filter(integration=crm, revoked_at__isnull=True).count() == 0


def test_revoke_refuses_another_clients_token_or_a_revoked_one(
    demo: Client, other_client: Client
) -> None:
    theirs, _ = add_integration(other_client)
    mine, _ = add_integration(demo)
    run("revoke_integration", "demo", str(mine.pk))

    for token_id in (theirs.pk, mine.pk):
        with pytest.raises(CommandError, match=f"demo has no integration token {token_id}"):
            run("revoke_integration", "demo", str(token_id))

    theirs.refresh_from_db()
    assert theirs.revoked_at is None
