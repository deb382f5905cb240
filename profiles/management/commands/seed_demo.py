"""Create the demo client and its users; safe to run again and again."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from profiles.access.actors import Actor
from profiles.access.clients import create_client, grant_role
from profiles.models import Client, Profile, ProfileApiSettings, Role

DEMO_CLIENT = ("demo", "Demo")
DEMO_USERS = (("approver", Role.APPROVER), ("editor", Role.EDITOR))
# Where the demo users' token expiry reminders go (printed by make run's console backend).
DEMO_EMAIL_DOMAIN = "demo.example"
# The visitor profile the examples of docs/api.md update and fetch.
DEMO_PROFILE = ("1368007744041-575948.01_00", "123-test")
SEEDER = Actor.named("seed_demo")


class Command(BaseCommand):
    help = (
        "Create the client 'demo' with users 'approver' (Approver) and 'editor' (Editor), "
        f"e-mail addresses <username>@{DEMO_EMAIL_DOMAIN} unless they have one, "
        "and the demo visitor profile (thirdPartyId 123-test). "
        "Passwords come from DEMO_PASSWORD, or are generated for new users and printed once."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        password = os.environ.get("DEMO_PASSWORD") or None
        with transaction.atomic():
            code, name = DEMO_CLIENT
            client = Client.objects.filter(code=code).first() or create_client(
                code, name, actor=SEEDER
            )
            ProfileApiSettings.for_client(client)
            for username, role in DEMO_USERS:
                self._seed_user(client, username, role, password)
            Profile.objects.get_or_create(
                client=client, pc_id=DEMO_PROFILE[0], defaults={"third_party_id": DEMO_PROFILE[1]}
            )

    def _seed_user(self, client: Client, username: str, role: Role, password: str | None) -> None:
        user, created = get_user_model().objects.get_or_create(username=username)
        if not user.email:
            user.email = f"{username}@{DEMO_EMAIL_DOMAIN}"
            user.save(update_fields=["email"])
        if created or password is not None:
            chosen = password or secrets.token_urlsafe(12)
            user.set_password(chosen)
            user.save()
            if password is None:
                self.stdout.write(f"Created user {username} with password {chosen}")
            else:
                self.stdout.write(f"User {username}: password set from DEMO_PASSWORD")
        else:
            self.stdout.write(f"User {username} exists; password unchanged")
        grant_role(user, client, role, actor=SEEDER)
