"""``make run``'s token encryption key (docs/operations.md#running-locally).

Creates ``var/token-encryption-key`` once, readable by its owner only, as settings create
``var/secret-key``, unless ``TOKEN_ENCRYPTION_KEYS`` is set or the file already exists.
Production sets ``TOKEN_ENCRYPTION_KEYS`` instead: the same keys on every host, kept apart
from the database.
"""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management.base import BaseCommand

from adapters.local_state import create_private_file


class Command(BaseCommand):
    help = "Create the local token encryption key file unless keys are configured already."

    def handle(self, *args: Any, **options: Any) -> None:
        path = settings.TOKEN_ENCRYPTION_KEY_FILE
        if settings.TOKEN_ENCRYPTION_KEYS or path.exists():
            return
        create_private_file(path, Fernet.generate_key().decode("ascii") + "\n")
        self.stdout.write(f"Created the token encryption key {path}.")
