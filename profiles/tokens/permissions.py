"""What an integration token may call (docs/tokens.md#permissions).

Three permissions, stored as a small bitmask with the token's integration and read by the
gate in the look-up that finds the token: **fetch** (read profiles), **update** (a single
update) and **batch** (batch files, JSON bulk, batch status). The client's own token holds
all three. On the wire they are names, always in this order: ``["fetch", "update", "batch"]``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Permission(enum.IntFlag):
    FETCH = 1
    UPDATE = 2
    BATCH = 4


ALL = Permission.FETCH | Permission.UPDATE | Permission.BATCH
NAMES = tuple(str(member.name).lower() for member in Permission)
NAMES_TEXT = ", ".join(f'"{name}"' for name in NAMES)


def names(granted: int) -> list[str]:
    """``granted`` as the wire's list of names, in :data:`NAMES` order."""
    return [str(member.name).lower() for member in Permission if granted & member]


def parse(given: Iterable[object]) -> Permission:
    """The permissions ``given`` names (each once or more, in any order).

    Raises ``ValueError`` with a reader's message for anything but names from
    :data:`NAMES`, or for none at all.
    """
    granted = Permission(0)
    for name in given:
        if not isinstance(name, str) or name not in NAMES:
            raise ValueError(f"each permission must be one of {NAMES_TEXT}.")
        granted |= Permission[name.upper()]
    if not granted:
        raise ValueError(f"give at least one permission: {NAMES_TEXT}.")
    return granted


def allows(granted: int, needed: Permission) -> bool:
    return bool(granted & needed)
