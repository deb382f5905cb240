"""`manage.py seed_demo`: the demo client and its users, created once, safe to repeat."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.http import HttpRequest
from django.test import RequestFactory

from profiles.models import AuditEvent, Client, Membership, Role


def sign_in() -> HttpRequest:
    """Sign-ins need a request: django-axes counts failures per username and address."""
    return RequestFactory().post("/accounts/login/")


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_it_creates_the_demo_client_and_its_users(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEMO_PASSWORD", "a demo password")

    seed()

    demo = Client.objects.get(code="demo")
    roles = dict(Membership.objects.filter(client=demo).values_list("user__username", "role"))
    assert roles == {"approver": Role.APPROVER, "editor": Role.EDITOR}
    assert authenticate(sign_in(), username="approver", password="a demo password") is not None
    assert authenticate(sign_in(), username="editor", password="a demo password") is not None


def test_it_generates_and_prints_passwords_once_without_demo_password(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)

    first = seed()
    second = seed()

    printed = dict(re.findall(r"Created user (\w+) with password (\S+)", first))
    assert set(printed) == {"approver", "editor"}
    assert authenticate(sign_in(), username="approver", password=printed["approver"]) is not None
    assert "password" not in second.replace("password unchanged", "")
    assert authenticate(sign_in(), username="approver", password=printed["approver"]) is not None


def test_it_is_idempotent(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_PASSWORD", "a demo password")
    seed()
    events = AuditEvent.objects.count()

    seed()

    assert Client.objects.filter(code="demo").count() == 1
    assert Membership.objects.count() == 2
    assert AuditEvent.objects.count() == events


def test_it_restores_a_changed_demo_role(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_PASSWORD", "a demo password")
    seed()
    Membership.objects.filter(user__username="approver").update(role=Role.OBSERVER)

    seed()

    assert Membership.objects.get(user__username="approver").role == Role.APPROVER
    assert (
        AuditEvent.objects.filter(
            action=AuditEvent.Action.ROLE_GRANTED, detail__startswith="approver is Approver"
        ).count()
        == 2
    )
