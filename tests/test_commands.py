"""The operator's command line: the same powers as the screen and the API, audited."""

from __future__ import annotations

import getpass
import logging
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client as HttpClient
from django.utils import timezone

from profiles.access.actors import SYSTEM
from profiles.models import (
    AuditEvent,
    Client,
    Membership,
    ProfileApiSettings,
    ProfileToken,
    Role,
)
from profiles.tokens import secret, verification
from profiles.tokens.models import TokenRejected
from tests.profile_api import PC_ID, a_profile

OPERATOR = f"cli:{getpass.getuser()}"


def run(*args: str) -> tuple[str, str]:
    """Run a command; return its stdout and stderr."""
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def refusal(*args: str) -> str:
    """The message of the ``CommandError`` a command fails with."""
    with pytest.raises(CommandError) as refused:
        run(*args)
    return str(refused.value)


def latest_event() -> AuditEvent:
    event = AuditEvent.objects.first()
    assert event is not None
    return event


# create_client


def test_it_creates_a_client_audited_as_the_operator(db: None) -> None:
    out, _ = run("create_client", "acme", "--name", "Acme Corp")
    assert out == "Created client acme (Acme Corp).\n"
    client = Client.objects.get(code="acme")
    assert client.name == "Acme Corp"
    event = AuditEvent.objects.get()
    assert (event.client, event.action, event.actor, event.actor_label) == (
        client,
        AuditEvent.Action.CLIENT_CREATED,
        None,
        OPERATOR,
    )
    assert event.detail == "named 'Acme Corp'"


def test_a_client_is_named_by_its_code_by_default(db: None) -> None:
    run("create_client", "acme")
    assert Client.objects.get(code="acme").name == "acme"


def test_it_refuses_a_duplicate_client_code(demo: Client) -> None:
    assert (
        refusal("create_client", "demo")
        == "Cannot create client 'demo': Client with this Code already exists."
    )
    assert Client.objects.count() == 1
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("code", ["Demo", "de mo", "démo", "a/b", ""])
def test_it_refuses_an_invalid_client_code(db: None, code: str) -> None:
    assert refusal("create_client", code).startswith(f"Cannot create client {code!r}: ")
    assert not Client.objects.exists()


# grant_role


def test_it_grants_a_role_to_a_new_member(demo: Client) -> None:
    dave = User.objects.create_user("dave")
    out, _ = run("grant_role", "dave", "demo", "approver")
    assert out == "dave is Approver of demo (new member).\n"
    assert Membership.objects.get(user=dave, client=demo).role == Role.APPROVER
    event = AuditEvent.objects.get()
    assert (event.action, event.actor_label, event.detail) == (
        AuditEvent.Action.ROLE_GRANTED,
        OPERATOR,
        "dave is Approver (new member)",
    )


def test_it_changes_an_existing_role(bob: User, demo: Client) -> None:
    out, _ = run("grant_role", "bob", "demo", "Publisher")
    assert out == "bob is Publisher of demo (was Editor).\n"
    assert Membership.objects.get(user=bob, client=demo).role == Role.PUBLISHER
    assert latest_event().detail == "bob is Publisher (was Editor)"


def test_granting_the_role_a_user_has_changes_nothing(bob: User) -> None:
    out, _ = run("grant_role", "bob", "demo", "editor")
    assert out == "bob is Editor of demo already; nothing changed.\n"
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nobody", "demo", "approver"), "Unknown user 'nobody'."),
        (("bob", "nowhere", "approver"), "Unknown client 'nowhere'."),
        (
            ("bob", "demo", "admin"),
            "Unknown role 'admin'; choose one of Observer, Editor, Publisher, Approver.",
        ),
    ],
)
def test_it_refuses_bad_grant_arguments(bob: User, args: tuple[str, ...], message: str) -> None:
    assert refusal("grant_role", *args) == message
    assert Membership.objects.get(user=bob).role == Role.EDITOR
    assert not AuditEvent.objects.exists()


# set_authentication


def test_it_turns_authentication_on_and_off(demo: Client) -> None:
    out, _ = run("set_authentication", "demo", "on")
    assert out == "Require Authentication is now on for demo.\n"
    assert ProfileApiSettings.for_client(demo).require_authentication
    assert (latest_event().action, latest_event().actor_label) == (
        AuditEvent.Action.AUTH_ENABLED,
        OPERATOR,
    )
    out, _ = run("set_authentication", "demo", "on")
    assert out == "Require Authentication was already on for demo.\n"
    assert AuditEvent.objects.count() == 1
    out, _ = run("set_authentication", "demo", "off")
    assert out == "Require Authentication is now off for demo.\n"
    assert not ProfileApiSettings.for_client(demo).require_authentication
    assert latest_event().action == AuditEvent.Action.AUTH_DISABLED


def test_it_refuses_a_state_other_than_on_or_off(demo: Client) -> None:
    assert "invalid choice: 'maybe'" in refusal("set_authentication", "demo", "maybe")


def test_it_records_a_named_actor(alice: User, demo: Client) -> None:
    run("set_authentication", "demo", "on", "--actor", "alice")
    event = latest_event()
    assert (event.actor, event.actor_label) == (alice, "alice")
    assert ProfileApiSettings.for_client(demo).changed_by == alice


def test_it_refuses_an_unknown_actor_and_changes_nothing(demo: Client) -> None:
    assert (
        refusal("set_authentication", "demo", "on", "--actor", "mallory")
        == "Unknown user 'mallory'."
    )
    assert not ProfileApiSettings.for_client(demo).require_authentication
    assert not AuditEvent.objects.exists()


# generate_token


def test_it_prints_the_new_token_alone_on_stdout(demo: Client) -> None:
    out, err = run("generate_token", "demo", "--expires-in-days", "30")
    plaintext = out.strip()
    assert out == plaintext + "\n"
    token = verification.verify(demo.pk, secret.check_format(plaintext))
    assert token.expires_at - token.created_at == timedelta(days=30)
    assert plaintext not in err
    assert f"Token tpa_…{plaintext[-4:]} for demo expires at " in err
    assert "shown only this once" in err
    assert "Require Authentication is off for demo" in err
    event = AuditEvent.objects.get()
    assert (event.action, event.actor_label, event.token_last_four, event.detail) == (
        AuditEvent.Action.TOKEN_GENERATED,
        OPERATOR,
        plaintext[-4:],
        "expires in 30 days",
    )


def test_a_new_token_replaces_the_old_one(demo: Client) -> None:
    old = run("generate_token", "demo")[0].strip()
    ProfileApiSettings.for_client(demo).set_require_authentication(True, actor=SYSTEM)
    new, err = run("generate_token", "demo")
    with pytest.raises(TokenRejected):
        verification.verify(demo.pk, old)
    assert verification.verify(demo.pk, new.strip())
    assert latest_event().action == AuditEvent.Action.TOKEN_REGENERATED
    assert "Require Authentication is off" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("demo", "--expires-in-days", "5"),
            "--expires-in-days must be one of 1, 7, 30, 90, 180, 365, not 5.",
        ),
        (
            ("demo", "--expires-in-days", "0"),
            "--expires-in-days must be one of 1, 7, 30, 90, 180, 365, not 0.",
        ),
        (("nowhere",), "Unknown client 'nowhere'."),
    ],
)
def test_it_refuses_bad_token_arguments(demo: Client, args: tuple[str, ...], message: str) -> None:
    assert refusal("generate_token", *args) == message
    assert not ProfileToken.objects.exists()
    assert not AuditEvent.objects.exists()


def test_it_refuses_an_expiry_that_is_not_a_number(demo: Client) -> None:
    refused = refusal("generate_token", "demo", "--expires-in-days", "ninety")
    assert "invalid int value: 'ninety'" in refused


def test_the_plaintext_is_never_logged_or_stored(
    demo: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        plaintext = run("generate_token", "demo")[0].strip()
        run("token_status", "demo")
    assert plaintext not in caplog.text
    assert plaintext not in run("dumpdata")[0]


# token_status


def test_it_shows_the_token_without_its_secret(alice: User, demo: Client) -> None:
    plaintext = run("generate_token", "demo", "--expires-in-days", "7", "--actor", "alice")[
        0
    ].strip()
    token = ProfileToken.objects.get()
    out, _ = run("token_status", "demo")
    assert plaintext not in out
    assert plaintext[4:-4] not in out
    lines = out.splitlines()
    assert lines[:5] == [
        "Client: demo (Demo)",
        "Require Authentication: off",
        f"Token: tpa_…{plaintext[-4:]} (active)",
        f"Generated: {token.created_at.isoformat()} by alice",
        f"Expires: {token.expires_at.isoformat()}",
    ]
    assert lines[5] in (
        "Expires in: 6 days, 23 hours, 59 minutes",
        "Expires in: 6 days, 23 hours, 58 minutes",
    )


def test_it_names_the_operator_who_generated_the_token(demo: Client) -> None:
    run("generate_token", "demo")
    assert f"by {OPERATOR}" in run("token_status", "demo")[0]


def test_it_shows_an_expired_token_as_expired(demo: Client) -> None:
    run("generate_token", "demo", "--expires-in-days", "1")
    ProfileToken.objects.update(expires_at=timezone.now() - timedelta(hours=1))
    out, _ = run("token_status", "demo")
    assert "(expired)" in out
    assert "Expires in: 0 days, 0 hours, 0 minutes" in out


def test_it_says_when_there_is_no_token(demo: Client) -> None:
    out, _ = run("token_status", "demo")
    assert out.splitlines()[-1] == "Token: none"
    assert not AuditEvent.objects.exists()


def test_status_refuses_an_unknown_client(db: None) -> None:
    assert refusal("token_status", "nowhere") == "Unknown client 'nowhere'."


# revoke_token


def test_it_revokes_the_active_token(demo: Client) -> None:
    plaintext = run("generate_token", "demo")[0].strip()
    out, _ = run("revoke_token", "demo")
    assert out == f"Revoked token tpa_…{plaintext[-4:]} of demo.\n"
    with pytest.raises(TokenRejected):
        verification.verify(demo.pk, plaintext)
    event = latest_event()
    assert (event.action, event.actor_label, event.token_last_four) == (
        AuditEvent.Action.TOKEN_REVOKED,
        OPERATOR,
        plaintext[-4:],
    )
    assert run("token_status", "demo")[0].splitlines()[-1] == "Token: none"


def test_revoking_without_a_token_changes_nothing(demo: Client) -> None:
    out, _ = run("revoke_token", "demo")
    assert out == "demo has no token to revoke.\n"
    assert not AuditEvent.objects.exists()


def test_revoke_refuses_an_unknown_client(db: None) -> None:
    assert refusal("revoke_token", "nowhere") == "Unknown client 'nowhere'."


# From a shell: the exit codes an operator's script sees


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parent.parent
    return subprocess.run(  # noqa: S603 - fixed arguments
        [sys.executable, str(root / "manage.py"), *args],
        capture_output=True,
        text=True,
        cwd=root,
        env={"PATH": "/usr/bin:/bin", **env},
        check=False,
    )


def test_commands_exit_non_zero_with_a_clear_message_from_a_shell(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "TARGETADMIN_VAR_DIR": str(tmp_path),
    }
    assert manage("migrate", "--verbosity", "0", **env).returncode == 0
    created = manage("create_client", "demo", "--name", "Demo", **env)
    assert (created.returncode, created.stdout) == (0, "Created client demo (Demo).\n")
    unknown = manage("revoke_token", "nowhere", **env)
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "CommandError: Unknown client 'nowhere'."
    bad_expiry = manage("generate_token", "demo", "--expires-in-days", "2", **env)
    assert bad_expiry.returncode == 1
    assert "--expires-in-days must be one of" in bad_expiry.stderr
    assert bad_expiry.stdout == ""
    bad_state = manage("set_authentication", "demo", "sideways", **env)
    assert bad_state.returncode == 2
    assert "invalid choice: 'sideways'" in bad_state.stderr
    generated = manage("generate_token", "demo", **env)
    assert generated.returncode == 0
    assert secret.check_format(generated.stdout.strip())


def test_a_token_made_on_the_command_line_opens_the_profile_apis(
    client: HttpClient, demo: Client
) -> None:
    a_profile(demo, city="Paris")
    run("set_authentication", "demo", "on")
    plaintext = run("generate_token", "demo")[0].strip()
    fetch = f"/rest/v1/profiles/{PC_ID}?client=demo"
    assert client.get(fetch, headers={"Authorization": f"Bearer {plaintext}"}).status_code == 200
    run("revoke_token", "demo")
    assert client.get(fetch, headers={"Authorization": f"Bearer {plaintext}"}).status_code == 401
