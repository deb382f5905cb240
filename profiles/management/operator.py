"""What every operator command shares: who the operator is, and finding the client."""

from __future__ import annotations

import getpass
from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.management.base import BaseCommand, CommandError

from profiles.access.actors import Actor
from profiles.models import Client
from profiles.tokens import expiry


def find_user(username: str) -> AbstractBaseUser:
    user_model = get_user_model()
    try:
        return user_model._default_manager.get_by_natural_key(username)
    except user_model.DoesNotExist:
        raise CommandError(f"Unknown user {username!r}.") from None


def find_client(code: str) -> Client:
    client = Client.objects.filter(code=code).first()
    if client is None:
        raise CommandError(f"Unknown client {code!r}.")
    return client


def add_expiry_argument(parser: ArgumentParser) -> None:
    """``--expires-in-days N``, read back by :func:`expires_in_days`."""
    parser.add_argument(
        "--expires-in-days",
        type=int,
        default=expiry.default_days(),
        metavar="N",
        help=f"one of {expiry.choices_text()} (default {expiry.default_days()})",
    )


def expires_in_days(options: dict[str, Any]) -> int:
    """The ``--expires-in-days`` given, when it is one of the choices; else ``CommandError``."""
    days: int = options["expires_in_days"]
    if days not in expiry.choices():
        raise CommandError(f"--expires-in-days must be one of {expiry.choices_text()}, not {days}.")
    return days


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class OperatorCommand(BaseCommand):
    """A command whose changes are audited with the operator as the actor.

    The actor is the Django user named by ``--actor``, or else ``cli:<OS user>``.
    """

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--actor",
            metavar="USERNAME",
            help="record this Django user as the actor (default: cli:<your OS user>)",
        )

    def operator(self, options: dict[str, Any]) -> Actor:
        """Who runs this command, for the model methods: built once per command."""
        if options.get("actor"):
            return Actor.person(find_user(options["actor"]))
        return Actor.named(f"cli:{_os_user()}")
