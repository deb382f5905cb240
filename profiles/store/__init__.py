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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from json.encoder import encode_basestring as _encode_string
from typing import NamedTuple, Protocol

from django.db import connection

from profiles.rules.limits import MAX_PROFILE_ATTRIBUTES_BYTES


class KeyKind(StrEnum):
    PC_ID = "pcId"
    THIRD_PARTY_ID = "thirdPartyId"

    @property
    def column(self) -> str:
        return "pc_id" if self is KeyKind.PC_ID else "third_party_id"


class Update(NamedTuple):
    """Non-empty attribute values to merge into the profile named by ``key``."""

    key: str
    attributes: dict[str, str]


@dataclass(slots=True)
class MergeResult:
    applied: dict[str, str] = field(default_factory=dict)  # key -> pcId of the profile
    not_found: set[str] = field(default_factory=set)
    too_large: set[str] = field(default_factory=set)


StoredAttributes = dict[str, dict[str, str]]
# (key, pcId for a new profile, the stored attributes as compact JSON text)
Row = tuple[str, str, str]


class Engine(Protocol):
    def merge(
        self,
        client_id: int,
        kind: KeyKind,
        payload: list[Row],
        *,
        create_missing: bool,
        now: datetime,
        with_pc_ids: bool = True,
    ) -> dict[str, str]:
        """Apply ``(key, pcId for a new profile, stored attributes as JSON)`` rows.

        Returns key -> pcId for every row applied. A row is left out when its profile does
        not exist (and ``create_missing`` is false) or when the merge would take the
        profile past ``MAX_PROFILE_ATTRIBUTES_BYTES``.
        """

    def existing_keys(self, client_id: int, kind: KeyKind, keys: list[str]) -> set[str]: ...


def new_pc_id() -> str:
    """A visitor id in Target's shape: ``<13 digits>-<6 digits>.<2 digits>_<2 digits>``."""
    return f"{time.time_ns() // 1_000_000:013d}-{secrets.randbelow(10**6):06d}.{secrets.randbelow(100):02d}_00"


def new_pc_ids(count: int) -> list[str]:
    """``count`` distinct visitor ids in Target's shape, cheaply, for one chunk.

    They share the millisecond and a random two-digit part and take consecutive values
    from a random start for the six digits, so a chunk never repeats an id and two chunks
    made in the same millisecond elsewhere collide only when both random parts overlap.
    """
    if count > 10**6:
        return [new_pc_id() for _ in range(count)]
    start = secrets.randbelow(10**6)
    prefix = f"{time.time_ns() // 1_000_000:013d}-"
    suffix = f".{secrets.randbelow(100):02d}_00"
    return [f"{prefix}{(start + n) % 10**6:06d}{suffix}" for n in range(count)]


def encoded_size(attributes: StoredAttributes) -> int:
    """Bytes the attributes take as compact JSON, the measure of the 64 KB limit."""
    return len(json.dumps(attributes, ensure_ascii=False, separators=(",", ":")).encode())


def _engine() -> Engine:
    from profiles.store import postgresql, sqlite

    if connection.vendor == "sqlite":
        return sqlite.ENGINE
    if connection.vendor == "postgresql":
        return postgresql.ENGINE
    raise NotImplementedError(f"no profile store for the {connection.vendor} database")


def _values_encoder() -> Callable[[Mapping[str, object]], str]:
    """Compact, non-ASCII-preserving ``json.dumps`` for a dict of strings (or of dicts).

    ``JSONEncoder.encode`` builds a new C encoder on every call; this runs once per row of
    every batch, so the C encoder is built once here when the interpreter has one.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover (interpreters without the C accelerator)
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    encoder = make(None, None, _encode_string, None, ":", ",", False, False, True)
    return lambda values: "".join(encoder(values, 0))


_encode_values = _values_encoder()


# A name or value that is exactly one of these, or that holds a quote, can make the text
# ``","`` or ``":"`` inside an encoded string (``{"a":","}``, ``{"a":"x\\","}``), where the
# fast path below would take it for a separator.
_SEPARATORS = frozenset({",", ":"})


def _attributes_json(attributes: dict[str, str], stamp: str, stamp_suffix: str) -> str:
    """``{name: {"value": value, "modifiedAt": stamp}}`` as compact JSON text.

    The same bytes ``encoded_size`` measures. Usually made without building the nested
    dicts: ``{"a":"1","b":"2"}`` is encoded in C, then each ``":"`` between a name and its
    value opens the inner object and each ``","`` (and the final ``"}``) closes it. Those
    sequences stand only between items unless a name or value is a bare separator or holds
    a quote; such rows are encoded whole instead.
    """
    text = _encode_values(attributes)
    if (
        '\\"' in text
        or not _SEPARATORS.isdisjoint(attributes)
        or not _SEPARATORS.isdisjoint(attributes.values())
    ):
        return _encode_values(
            {name: {"value": value, "modifiedAt": stamp} for name, value in attributes.items()}
        )
    return (
        text.replace('":"', '":{"value":"')
        .replace('","', '"' + stamp_suffix + ',"')
        .removesuffix('"}')
        + '"'
        + stamp_suffix
        + "}"
    )


def existing_keys(client_id: int, kind: KeyKind, keys: list[str]) -> set[str]:
    """Which of ``keys`` name one of the client's profiles, in one query."""
    return _engine().existing_keys(client_id, kind, list(dict.fromkeys(keys))) if keys else set()


@dataclass(slots=True)
class Encoded:
    """A chunk's updates combined by key and encoded as the engine takes them.

    Made without the database (a batch's parser process makes it ahead of the writer);
    ``now`` is the time the attributes' ``modifiedAt`` holds, for the write to stamp too.
    """

    payload: list[Row]
    too_large: set[str]
    now: datetime


def encode(
    kind: KeyKind, updates: Iterable[Update], *, create_missing: bool, now: datetime
) -> Encoded:
    """Combine updates of the same key in order (the last value of an attribute wins, so
    the result is the same on every database) and encode each key's attributes once."""
    combined: dict[str, dict[str, str]] = {}
    for key, attributes in updates:
        known = combined.get(key)
        combined[key] = attributes if known is None else known | attributes
    encoded = Encoded([], set(), now)
    if not combined:
        return encoded
    stamp = now.isoformat()
    stamp_suffix = ',"modifiedAt":' + _encode_string(stamp) + "}"
    # Only a profile created by thirdPartyId needs a new pcId.
    new = create_missing and kind is KeyKind.THIRD_PARTY_ID
    pc_ids = new_pc_ids(len(combined)) if new else None
    payload = encoded.payload
    for number, (key, attributes) in enumerate(combined.items()):
        text = _attributes_json(attributes, stamp, stamp_suffix)
        # UTF-8 takes at most 4 bytes a character: only long texts need the exact count.
        if len(text) * 4 > MAX_PROFILE_ATTRIBUTES_BYTES and (
            len(text.encode()) > MAX_PROFILE_ATTRIBUTES_BYTES
        ):
            encoded.too_large.add(key)
            continue
        payload.append((key, key if pc_ids is None else pc_ids[number], text))
    return encoded


def write(
    client_id: int,
    kind: KeyKind,
    encoded: Encoded,
    *,
    create_missing: bool,
    with_pc_ids: bool = True,
) -> MergeResult:
    """Merge an encoded chunk into the client's profiles: the database's part of ``merge``."""
    result = MergeResult(too_large=set(encoded.too_large))
    if not encoded.payload:
        return result
    engine = _engine()
    result.applied = engine.merge(
        client_id,
        kind,
        encoded.payload,
        create_missing=create_missing,
        now=encoded.now,
        with_pc_ids=with_pc_ids,
    )
    left_out = [key for key, _, _ in encoded.payload if key not in result.applied]
    if left_out:
        existing = engine.existing_keys(client_id, kind, left_out)
        for key in left_out:
            (result.too_large if key in existing else result.not_found).add(key)
    return result


def merge(
    client_id: int,
    kind: KeyKind,
    updates: Iterable[Update],
    *,
    create_missing: bool,
    now: datetime,
    with_pc_ids: bool = True,
) -> MergeResult:
    """Merge one chunk of updates into the client's profiles: ``encode``, then ``write``.

    Without ``with_pc_ids`` the engine may take a faster path that does not report pcIds:
    ``applied`` then maps each applied key to ``""``.
    """
    encoded = encode(kind, updates, create_missing=create_missing, now=now)
    return write(client_id, kind, encoded, create_missing=create_missing, with_pc_ids=with_pc_ids)
