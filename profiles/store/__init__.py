"""The profile store's merge-upsert interface.

Every write to a profile's attributes goes through :func:`merge`, which applies a chunk of
updates in one statement per chunk on the database (never read-modify-write in Python), so
concurrent updates of different attributes of one profile all survive. The per-database
SQL lives in one module per engine; this module picks the one for the connection.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from django.db import connection

MAX_PROFILE_ATTRIBUTES_BYTES = 64 * 1024


class KeyKind(StrEnum):
    PC_ID = "pcId"
    THIRD_PARTY_ID = "thirdPartyId"

    @property
    def column(self) -> str:
        return "pc_id" if self is KeyKind.PC_ID else "third_party_id"


@dataclass(frozen=True, slots=True)
class Update:
    """Non-empty attribute values to merge into the profile named by ``key``."""

    key: str
    attributes: dict[str, str]


@dataclass(slots=True)
class MergeResult:
    applied: dict[str, str] = field(default_factory=dict)  # key -> pcId of the profile
    not_found: set[str] = field(default_factory=set)
    too_large: set[str] = field(default_factory=set)


StoredAttributes = dict[str, dict[str, str]]
Row = tuple[str, str, StoredAttributes]


class Engine(Protocol):
    def merge(
        self,
        client_id: int,
        kind: KeyKind,
        payload: list[Row],
        *,
        create_missing: bool,
        now: datetime,
    ) -> dict[str, str]:
        """Apply ``(key, pcId for a new profile, stored attributes)`` rows.

        Returns key -> pcId for every row applied. A row is left out when its profile does
        not exist (and ``create_missing`` is false) or when the merge would take the
        profile past ``MAX_PROFILE_ATTRIBUTES_BYTES``.
        """

    def existing_keys(self, client_id: int, kind: KeyKind, keys: list[str]) -> set[str]: ...


def new_pc_id() -> str:
    """A visitor id in Target's shape: ``<13 digits>-<6 digits>.<2 digits>_<2 digits>``."""
    return f"{time.time_ns() // 1_000_000:013d}-{secrets.randbelow(10**6):06d}.{secrets.randbelow(100):02d}_00"


def encoded_size(attributes: StoredAttributes) -> int:
    """Bytes the attributes take as compact JSON, the measure of the 64 KB limit."""
    return len(json.dumps(attributes, ensure_ascii=False, separators=(",", ":")).encode())


def _may_exceed_limit(attributes: dict[str, str]) -> bool:
    # A cheap upper bound (6 bytes per character covers JSON escapes and UTF-8, 80 bytes
    # the per-attribute wrapper) spares the exact measure for all but very large rows.
    characters = sum(len(name) + len(value) for name, value in attributes.items())
    return characters * 6 + len(attributes) * 80 > MAX_PROFILE_ATTRIBUTES_BYTES


def _engine() -> Engine:
    from profiles.store import postgresql, sqlite

    if connection.vendor == "sqlite":
        return sqlite.ENGINE
    if connection.vendor == "postgresql":
        return postgresql.ENGINE
    raise NotImplementedError(f"no profile store for the {connection.vendor} database")


def merge(
    client_id: int,
    kind: KeyKind,
    updates: Iterable[Update],
    *,
    create_missing: bool,
    now: datetime,
) -> MergeResult:
    """Merge one chunk of updates into the client's profiles.

    Updates of the same key are combined in order first (the last value of an attribute
    wins), so the result is the same on every database.
    """
    combined: dict[str, dict[str, str]] = {}
    for update in updates:
        combined.setdefault(update.key, {}).update(update.attributes)
    result = MergeResult()
    if not combined:
        return result
    stamp = now.isoformat()
    payload: list[Row] = []
    for key, attributes in combined.items():
        stored = {name: {"value": value, "modifiedAt": stamp} for name, value in attributes.items()}
        if _may_exceed_limit(attributes) and encoded_size(stored) > MAX_PROFILE_ATTRIBUTES_BYTES:
            result.too_large.add(key)
            continue
        payload.append((key, key if kind is KeyKind.PC_ID else new_pc_id(), stored))
    engine = _engine()
    result.applied = engine.merge(client_id, kind, payload, create_missing=create_missing, now=now)
    left_out = [key for key, _, _ in payload if key not in result.applied]
    if left_out:
        existing = engine.existing_keys(client_id, kind, left_out)
        for key in left_out:
            (result.too_large if key in existing else result.not_found).add(key)
    return result
