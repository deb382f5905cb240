"""The audit lines of signing in (docs/operations.md#audit-lines-of-signing-in), on the
logger ``targetadmin.sign_in``: sign-ins through the identity provider, the ones it refused
and why, operator status its groups gave or took away, and every password sign-in while
passwords are switched off (break-glass).

A refused sign-in belongs to no client, so it is a log line rather than an audit event;
role changes are audit events of their client (``profiles.access.provider_roles``).
"""

from __future__ import annotations

import logging

logger = logging.getLogger("targetadmin.sign_in")


def signed_in(username: str, address: str | None) -> None:
    logger.info("%s signed in through the identity provider from %s", username, address)


def refused(reason: str, address: str | None) -> None:
    logger.warning("sign-in through the identity provider refused from %s: %s", address, reason)


def operator_changed(username: str, operator: bool, address: str | None) -> None:
    change = "granted to" if operator else "taken from"
    logger.warning(
        "operator status (Django admin) %s %s by the identity provider's groups, from %s",
        change,
        username,
        address,
    )


def break_glass(username: str, address: str | None) -> None:
    logger.warning(
        "break-glass: %s signed in with a password from %s while password sign-in is off",
        username,
        address,
    )
