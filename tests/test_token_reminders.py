"""Expiry reminders: the client's Approvers are e-mailed 7 days and 1 day before the active
token expires and once it has, each reminder once per token (docs/tokens.md#expiry-reminders)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.mail.backends.locmem import EmailBackend
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from profiles.access.actors import SYSTEM
from profiles.models import AuditEvent, Client, ProfileToken, Role, TokenReminder
from profiles.tokens import reminders
from tests.profile_api import issue
from tests.support import manage, member

ROOT = Path(__file__).resolve().parent.parent
Kind = TokenReminder.Kind


def before_expiry(token: ProfileToken, **left: float) -> datetime:
    return token.expires_at - timedelta(**left)


@pytest.fixture
def approvers(demo: Client, alice: User, bob: User, charlie: User) -> list[str]:
    """alice and a second Approver have addresses; bob (Editor), charlie (Approver of acme),
    an Approver without an address and an inactive one get nothing."""
    alice.email = "alice@demo.example"
    alice.save()
    bob.email = "bob@demo.example"
    bob.save()
    charlie.email = "charlie@acme.example"
    charlie.save()
    dora = member(demo, "dora", Role.APPROVER)
    dora.email = "dora@demo.example"
    dora.save()
    member(demo, "nomail", Role.APPROVER)
    gone = member(demo, "gone", Role.APPROVER)
    gone.email, gone.is_active = "gone@demo.example", False
    gone.save()
    return ["alice@demo.example", "dora@demo.example"]


@pytest.mark.parametrize(
    ("days", "left", "kind"),
    [
        (90, timedelta(days=8), None),
        (90, timedelta(days=7), Kind.SEVEN_DAYS),
        (90, timedelta(days=1, seconds=1), Kind.SEVEN_DAYS),
        (90, timedelta(days=1), Kind.ONE_DAY),
        (90, timedelta(seconds=1), Kind.ONE_DAY),
        (90, timedelta(0), Kind.EXPIRED),
        (90, timedelta(days=-30), Kind.EXPIRED),
        # A reminder whose moment came before the token existed is not news.
        (7, timedelta(days=6), None),
        (7, timedelta(hours=12), Kind.ONE_DAY),
        (1, timedelta(hours=12), None),
        (1, timedelta(0), Kind.EXPIRED),
    ],
)
def test_it_knows_which_reminder_is_due(
    demo: Client, days: int, left: timedelta, kind: TokenReminder.Kind | None
) -> None:
    token, _ = issue(demo, days)
    assert reminders.due(token, token.expires_at - left) == kind


def test_it_emails_each_approver_with_an_address_7_days_before(
    demo: Client, approvers: list[str], mailoutbox: list[Any]
) -> None:
    token, plaintext = issue(demo)

    done = reminders.sweep(before_expiry(token, days=7))

    assert [m.to for m in mailoutbox] == [[address] for address in approvers]
    message = mailoutbox[0]
    assert message.subject == "[targetadmin] Profile token of demo expires within 7 days"
    expires = timezone.localtime(token.expires_at)
    text = " ".join(message.body.split())
    assert (
        f"tpa_…{plaintext[-4:]} of client Demo (demo) expires in 7 days, 0 hours, 0 minutes" in text
    )
    assert f"at {expires:%Y-%m-%d %H:%M %Z}" in text
    assert max(len(line) for line in message.body.splitlines()) <= 72
    assert "http://127.0.0.1:8000/setup/demo/implementation/" in message.body
    assert message.from_email == "targetadmin <targetadmin@localhost>"
    for sent in mailoutbox:
        assert plaintext not in sent.message().as_string()
        assert plaintext[4:-4] not in sent.body
    assert (len(done.reminders), done.emails) == (1, 2)
    event = AuditEvent.objects.get(action=AuditEvent.Action.REMINDER_SENT)
    assert (event.actor_label, event.token_last_four, event.detail) == (
        "targetadmin",
        token.last_four,
        "expires within 7 days, to 2 Approvers",
    )


def test_it_sends_each_reminder_once_across_sweeps(
    demo: Client, approvers: list[str], mailoutbox: list[Any]
) -> None:
    token, _ = issue(demo)

    for moment in (
        before_expiry(token, days=8),
        before_expiry(token, days=7),
        before_expiry(token, days=7),
        before_expiry(token, days=3),
        before_expiry(token, days=1),
        before_expiry(token, hours=1),
        token.expires_at,
        token.expires_at + timedelta(days=1),
    ):
        reminders.sweep(moment)

    sent = [m.subject.rsplit(" of demo ", 1)[1] for m in mailoutbox]
    assert (
        sent == ["expires within 7 days"] * 2 + ["expires within 1 day"] * 2 + ["has expired"] * 2
    )
    assert set(TokenReminder.objects.values_list("kind", flat=True)) == set(Kind)
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REMINDER_SENT).count() == 3


def test_after_a_pause_only_the_latest_reminder_due_is_sent(
    demo: Client, approvers: list[str], mailoutbox: list[Any]
) -> None:
    token, _ = issue(demo)

    reminders.sweep(before_expiry(token, hours=5))
    reminders.sweep(before_expiry(token, hours=4))

    assert {m.subject for m in mailoutbox} == {
        "[targetadmin] Profile token of demo expires within 1 day"
    }
    assert list(TokenReminder.objects.values_list("kind", flat=True)) == [Kind.ONE_DAY]


def test_the_expired_reminder_says_calls_fail(
    demo: Client, approvers: list[str], mailoutbox: list[Any]
) -> None:
    token, _ = issue(demo)

    reminders.sweep(token.expires_at + timedelta(minutes=5))

    body = " ".join(mailoutbox[0].body.split())
    assert mailoutbox[0].subject.endswith("of demo has expired")
    assert "expired at" in body
    assert "Generate a new token" in body


def test_replaced_and_revoked_tokens_get_no_reminder(
    demo: Client, approvers: list[str], mailoutbox: list[Any]
) -> None:
    old, _ = issue(demo, 7)
    issue(demo, 90, grace=3600)  # old is in its grace period
    other, _ = issue(Client.objects.create(code="gamma", name="Gamma"), 7)
    ProfileToken.objects.revoke_active(other.client, actor=SYSTEM)

    reminders.sweep(old.expires_at)

    assert mailoutbox == []
    assert not TokenReminder.objects.exists()


def test_a_reminder_without_recipients_waits_for_one(
    demo: Client, alice: User, mailoutbox: list[Any]
) -> None:
    token, _ = issue(demo)
    moment = before_expiry(token, days=6)

    reminders.sweep(moment)
    assert mailoutbox == []
    assert not TokenReminder.objects.exists()

    alice.email = "alice@demo.example"
    alice.save()
    reminders.sweep(moment)
    assert [m.to for m in mailoutbox] == [["alice@demo.example"]]


def test_a_failed_send_is_tried_again_by_the_next_sweep(
    demo: Client, approvers: list[str], mailoutbox: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    token, _ = issue(demo)
    moment = before_expiry(token, days=6)

    def refuse(self: EmailBackend, messages: list[Any]) -> int:
        raise ConnectionRefusedError("SMTP server down")

    with monkeypatch.context() as patch:
        patch.setattr(EmailBackend, "send_messages", refuse)
        assert reminders.sweep(moment).reminders == []
    assert not TokenReminder.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.REMINDER_SENT).exists()

    assert len(reminders.sweep(moment).reminders) == 1
    assert len(mailoutbox) == 2


def test_a_reminder_another_sweep_claimed_is_not_sent(
    demo: Client, approvers: list[str], mailoutbox: list[Any]
) -> None:
    token, _ = issue(demo)
    moment = before_expiry(token, days=6)
    # Another sweep claims it between this one's check and its claim.
    claimed = reminders._claim(token, Kind.SEVEN_DAYS, moment, 2)
    assert claimed is not None

    assert reminders._claim(token, Kind.SEVEN_DAYS, moment, 2) is None
    assert reminders.sweep(moment).reminders == []
    assert mailoutbox == []


def test_the_sweep_also_records_grace_periods_that_ran_out(demo: Client) -> None:
    issue(demo)
    issue(demo, grace=3600)

    done = reminders.sweep(timezone.now() + timedelta(hours=2))

    assert done.graces_ended == 1
    assert not ProfileToken.objects.filter(client=demo, grace_until__isnull=False).filter(
        revoked_at__isnull=True
    )


def test_the_command_runs_one_sweep(
    demo: Client, approvers: list[str], mailoutbox: list[Any]
) -> None:
    issue(demo, now=timezone.now() - timedelta(days=89, hours=21))  # 3 hours left
    out = StringIO()

    call_command("send_token_reminders", stdout=out)
    call_command("send_token_reminders", stdout=out)

    assert len(mailoutbox) == 2
    assert out.getvalue().splitlines() == [
        "Sent 1 token reminder(s) in 2 e-mail(s); recorded 0 ended grace period(s); "
        "pruned 0 day(s) of token usage.",
        "Sent 0 token reminder(s) in 0 e-mail(s); recorded 0 ended grace period(s); "
        "pruned 0 day(s) of token usage.",
    ]


def test_the_command_refuses_an_interval_under_a_second(db: None) -> None:
    with pytest.raises(CommandError, match="--every must be at least 1 second"):
        call_command("send_token_reminders", "--every", "0")


def test_seed_demo_gives_the_demo_users_addresses(db: None) -> None:
    call_command("seed_demo", stdout=StringIO())
    users = User.objects.filter(memberships__client__code="demo")
    assert dict(users.values_list("username", "email")) == {
        "approver": "approver@demo.example",
        "editor": "editor@demo.example",
    }
    User.objects.filter(username="approver").update(email="ops@example.com")
    call_command("seed_demo", stdout=StringIO())
    assert User.objects.get(username="approver").email == "ops@example.com"


# A restart: separate processes on one database file, as `make run` runs them


SETUP = """
import sys
from datetime import timedelta

import django

django.setup()
from django.contrib.auth.models import User
from django.utils import timezone

from profiles.access.actors import Actor
from profiles.access.clients import create_client, grant_role
from profiles.models import ProfileToken, Role

actor = Actor.named("test")
client = create_client("demo", "Demo", actor=actor)
user = User.objects.create_user("approver", email="approver@demo.example")
grant_role(user, client, Role.APPROVER, actor=actor)
# Generated 84 days ago: 6 days left.
_, plaintext = ProfileToken.objects.issue(
    client, expires_in_days=90, actor=actor, now=timezone.now() - timedelta(days=84)
)
print(plaintext)
"""


def console_emails(printed: str) -> list[EmailMessage]:
    """The messages the console backend printed among other lines."""
    found = []
    for chunk in printed.split("-" * 79 + "\n"):
        start = chunk.find("Content-Type: ")
        if start != -1:
            found.append(message_from_bytes(chunk[start:].encode(), policy=policy.default))
    return found  # type: ignore[return-value]


def test_restarted_processes_send_each_reminder_once_on_the_console(tmp_path: Path) -> None:
    env = os.environ | {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "TARGETADMIN_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "targetadmin.settings",
        "SITE_URL": "http://127.0.0.1:8123",
    }
    env.pop("EMAIL_BACKEND", None)
    manage(env, "migrate", "--noinput", check=True)
    plaintext = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", SETUP],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.strip()

    # The loop make run starts: a sweep at start-up, then every second here, until TERM.
    loop = subprocess.Popen(
        [sys.executable, "manage.py", "send_token_reminders", "--every", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert loop.stdout is not None
    seen, sweeps = [], 0
    while sweeps < 3:
        line = loop.stdout.readline()
        assert line, "the loop stopped on its own"
        seen.append(line)
        sweeps += line.startswith("Sent ")
    loop.send_signal(signal.SIGTERM)
    rest, _ = loop.communicate(timeout=60)
    first = "".join(seen) + rest
    second = manage(env, "send_token_reminders", check=True).stdout  # a restart

    printed = first + second
    (message,) = console_emails(printed)
    assert message["Subject"].strip() == "[targetadmin] Profile token of demo expires within 7 days"
    assert message["To"] == "approver@demo.example"
    assert message["Content-Transfer-Encoding"] == "8bit"  # readable as printed
    body = message.get_content()
    assert f"tpa_…{plaintext[-4:]} of client Demo (demo) expires in 5 days, 23 hours" in " ".join(
        body.split()
    )
    assert "http://127.0.0.1:8123/setup/demo/implementation/" in body
    assert plaintext not in printed
    assert plaintext not in body
    assert first.count("Sent 1 token reminder(s) in 1 e-mail(s)") == 1
    assert second.splitlines()[-1] == (
        "Sent 0 token reminder(s) in 0 e-mail(s); recorded 0 ended grace period(s); "
        "pruned 0 day(s) of token usage."
    )
    assert loop.returncode == 0


def test_make_run_starts_the_reminder_loop() -> None:
    script = (ROOT / "bin" / "run").read_text()
    assert 'start "$PY" manage.py send_token_reminders --every 600' in script


def test_it_reads_an_smtp_mailer_from_the_environment() -> None:
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.MAILERS, settings.DEFAULT_FROM_EMAIL)",
        ],
        cwd=ROOT,
        env=os.environ
        | {
            "DJANGO_SETTINGS_MODULE": "targetadmin.settings",
            "EMAIL_BACKEND": "smtp",
            "EMAIL_HOST": "mail.example.com",
            "EMAIL_PORT": "587",
            "EMAIL_HOST_USER": "targetadmin",
            "EMAIL_HOST_PASSWORD": "a mail password",
            "EMAIL_USE_TLS": "true",
            "DEFAULT_FROM_EMAIL": "targetadmin@example.com",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "'BACKEND': 'django.core.mail.backends.smtp.EmailBackend'" in shown
    assert "'host': 'mail.example.com', 'port': 587" in shown
    assert "'use_tls': True, 'use_ssl': False" in shown
    assert shown.strip().endswith("targetadmin@example.com")


def test_it_refuses_an_unknown_mail_backend_at_start_up() -> None:
    refused = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=os.environ | {"EMAIL_BACKEND": "carrier-pigeon"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode != 0
    assert "EMAIL_BACKEND must be console, smtp or a backend's dotted path" in refused.stderr
