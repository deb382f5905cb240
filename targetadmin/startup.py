"""Checks the production server runs once before it serves (gunicorn.conf.py ``on_starting``).

``migrate`` runs the database checks once per release; a web host started later, with its
environment changed since, would otherwise only find out on the first token generated. So
gunicorn's master runs the retrievable-token check (profiles/tokens/checks.py,
docs/tokens.md#retrievable-tokens) before it binds a port or starts a worker: with
``DEBUG`` off, a client with the option on and no ``TOKEN_ENCRYPTION_KEYS`` stops the start
with the check's message. A database not migrated this far has no such client and starts.
It also runs the check of local state (adapters/local_state.py): ``var/`` and a SQLite
database are made private, and one it cannot make private stops the start.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from django.core.checks import CheckMessage

from adapters import local_state


def _format(message: CheckMessage) -> str:
    hint = f" HINT: {message.hint}" if message.hint else ""
    return f"{message.id}: {message.msg}{hint}"


def token_encryption_key_messages() -> list[CheckMessage]:
    """What the retrievable-token check reports about the default database now."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "targetadmin.settings")
    import django

    django.setup()
    from django.db import DEFAULT_DB_ALIAS, connections

    from profiles.tokens.checks import token_encryption_keys

    try:
        return token_encryption_keys(databases=[DEFAULT_DB_ALIAS])
    finally:
        # The master forks the workers: none may inherit its database connection.
        connections.close_all()


def refusal(warn: Callable[[str], None]) -> str | None:
    """Why the server must not start (the checks' errors, one a line), or ``None``; each
    warning (``DEBUG`` on) goes to ``warn``."""
    errors = []
    messages = token_encryption_key_messages() + local_state.check()
    for message in messages:
        if message.is_serious():
            errors.append(_format(message))
        else:
            warn(_format(message))
    return "\n".join(errors) or None
