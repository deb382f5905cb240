"""The start-up check of retrievable tokens (docs/tokens.md#retrievable-tokens): a client
that keeps encrypted copies needs a key to keep and open them.

A database check (Django runs it with ``migrate`` and ``check --database default``; gunicorn
runs it before it serves, targetadmin/startup.py): in production (``DEBUG`` off) a missing
key is an error, so a release or a web server without ``TOKEN_ENCRYPTION_KEYS`` stops before
it serves; with ``DEBUG`` on it is a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core import checks
from django.db import DatabaseError, connections, transaction

from profiles.tokens import sealing
from profiles.tokens.models import ProfileApiSettings

MISSING_KEY_ERROR = "profiles.E001"  # production
MISSING_KEY_WARNING = "profiles.W001"  # DEBUG on


def _clients_keeping_copies(alias: str) -> list[str]:
    """Codes of the clients with retrieval on; none on a database not migrated this far."""
    try:
        with transaction.atomic(using=alias):
            return list(
                ProfileApiSettings.objects.using(alias)
                .filter(token_retrievable=True)
                .values_list("client__code", flat=True)[:5]
            )
    except DatabaseError:
        return []  # the table or column does not exist yet: migrate is about to add it


def token_encryption_keys(
    app_configs: Sequence[Any] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[checks.CheckMessage]:
    if sealing.is_configured() or not databases:
        return []
    found: list[checks.CheckMessage] = []
    for alias in databases:
        if alias not in connections:
            continue
        clients = _clients_keeping_copies(alias)
        if not clients:
            continue
        level, check_id = (
            (checks.Warning, MISSING_KEY_WARNING)
            if settings.DEBUG
            else (checks.Error, MISSING_KEY_ERROR)
        )
        found.append(
            level(
                f"Client(s) {', '.join(clients)} allow the token to be retrieved again, "
                "but no token encryption key is configured.",
                hint="Set TOKEN_ENCRYPTION_KEYS (docs/operations.md#configuration), or turn "
                "the option off for those clients.",
                id=check_id,
            )
        )
    return found
