"""The one ingest pipeline: every way in (batch file, JSON bulk, single update) ends here.

Entry points differ only in how they parse; each turns its input into ``Row``s and calls
:func:`apply_chunk` (or :func:`apply` for small inputs). The pipeline validates each row
against docs/api.md#limits, records a ``RowFailure`` for a bad row without stopping the
others, drops empty values, and merges the rest through ``profiles.store`` in one
statement per chunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import NamedTuple

from django.utils import timezone

from profiles import store
from profiles.rules.errors import ErrorCode
from profiles.rules.limits import (
    MAX_ID_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PROFILE_ATTRIBUTES_BYTES,
    MAX_VALUE_LENGTH,
)
from profiles.store import KeyKind, Update
from profiles.store.keys import InvalidProfileId, check_profile_id, is_storable, why_unstorable

CHUNK_SIZE = 5_000


class Row(NamedTuple):
    """One profile's update as sent: its line number (batch file) or index (JSON list)."""

    position: int
    profile_id: str
    attributes: dict[str, str]


@dataclass(frozen=True, slots=True)
class RowFailure:
    position: int
    profile_id: str
    code: ErrorCode
    message: str


class RowError(ValueError):
    """Why one row cannot be applied; the rest of its batch goes on."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class Outcome:
    successful: int = 0
    not_found: int = 0
    failures: list[RowFailure] = field(default_factory=list)
    pc_ids: dict[str, str] = field(default_factory=dict)  # profile id as sent -> pcId

    @property
    def consumed(self) -> int:
        return self.successful + self.not_found + len(self.failures)

    def add(self, other: Outcome) -> None:
        self.successful += other.successful
        self.not_found += other.not_found
        self.failures.extend(other.failures)
        self.pc_ids.update(other.pc_ids)


def check_attribute_name(name: str) -> None:
    if not is_storable(name):
        raise RowError(
            ErrorCode.BAD_ATTRIBUTE_NAME, f"attribute name {name!r} {why_unstorable(name)}"
        )
    if not name:
        raise RowError(ErrorCode.BAD_ATTRIBUTE_NAME, "attribute name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise RowError(
            ErrorCode.BAD_ATTRIBUTE_NAME,
            f"attribute name {name[:32]!r}… is longer than {MAX_NAME_LENGTH} characters",
        )
    if name.startswith("profile."):
        raise RowError(
            ErrorCode.BAD_ATTRIBUTE_NAME, f"attribute name {name!r} must not start with 'profile.'"
        )
    if not name.isprintable():
        raise RowError(
            ErrorCode.BAD_ATTRIBUTE_NAME, f"attribute name {name!r} contains control characters"
        )


def check_value(name: str, value: str) -> None:
    if not is_storable(value):
        raise RowError(ErrorCode.BAD_VALUE, f"value of {name!r} {why_unstorable(value)}")
    if len(value) > MAX_VALUE_LENGTH:
        raise RowError(
            ErrorCode.VALUE_TOO_LONG,
            f"value of {name!r} is longer than {MAX_VALUE_LENGTH} characters",
        )


@dataclass(slots=True)
class Prepared:
    """A run of rows of one key kind, validated and encoded: all the writer needs.

    Made without the database, so a batch's parser process makes it ahead of the writer.
    """

    kind: KeyKind
    encoded: store.Encoded
    valid: list[tuple[int, str]]  # (position, profile id) of each row to merge, in order
    empty: list[str]  # ids of the rows whose values are all empty
    failures: list[RowFailure]

    def __len__(self) -> int:
        """The run's rows, failed ones included."""
        return len(self.valid) + len(self.empty) + len(self.failures)


def prepare(
    kind: KeyKind, rows: Iterable[Row], *, create_missing: bool, now: datetime | None = None
) -> Prepared:
    """Validate rows against docs/api.md#limits and encode the valid ones for the store."""
    failures: list[RowFailure] = []
    valid: list[tuple[int, str]] = []
    updates: list[Update] = []
    empty: list[str] = []
    checked_names: set[str] = set()
    third_party = kind is KeyKind.THIRD_PARTY_ID
    for row in rows:
        profile_id, attributes = row.profile_id, row.attributes
        # Most rows have no empty value: the dict as parsed, not a copy of it.
        kept = (
            attributes if all(attributes.values()) else {n: v for n, v in attributes.items() if v}
        )
        try:
            # The cheap tests pass for almost every row; the checks say what is wrong.
            if (
                not profile_id
                or len(profile_id) > MAX_ID_LENGTH
                or (third_party and ("+" in profile_id or "/" in profile_id))
                or not profile_id.isprintable()
            ):
                check_profile_id(kind, profile_id)
            if not checked_names.issuperset(attributes):
                for name in attributes:
                    check_attribute_name(name)
                checked_names.update(attributes)
            if kept and (
                max(map(len, kept.values())) > MAX_VALUE_LENGTH
                or not is_storable("".join(kept.values()))
            ):
                for name, value in kept.items():
                    check_value(name, value)
        except (RowError, InvalidProfileId) as error:
            failures.append(RowFailure(row.position, profile_id, error.code, error.message))
            continue
        if kept:
            valid.append((row.position, profile_id))
            updates.append(Update(profile_id, kept))
        else:
            empty.append(profile_id)
    encoded = store.encode(kind, updates, create_missing=create_missing, now=now or timezone.now())
    return Prepared(kind, encoded, valid, empty, failures)


def write(
    client_id: int, prepared: Prepared, *, create_missing: bool, with_pc_ids: bool = True
) -> Outcome:
    """Merge a prepared run into the store and count it; the caller owns the transaction.

    Without ``with_pc_ids`` the outcome's ``pc_ids`` may be left empty, which lets the
    store take its fastest path (batches count rows; they do not report pcIds).
    """
    outcome = Outcome(failures=list(prepared.failures))
    if prepared.empty:
        _count_empty_rows(client_id, prepared.kind, prepared.empty, create_missing, outcome)
    merged = store.write(
        client_id,
        prepared.kind,
        prepared.encoded,
        create_missing=create_missing,
        with_pc_ids=with_pc_ids,
    )
    if with_pc_ids:
        outcome.pc_ids = merged.applied
    if len(merged.applied) == len(prepared.valid):
        outcome.successful += len(prepared.valid)
        return outcome
    for position, profile_id in prepared.valid:
        if profile_id in merged.applied:
            outcome.successful += 1
        elif profile_id in merged.not_found:
            outcome.not_found += 1
        else:
            outcome.failures.append(
                RowFailure(
                    position,
                    profile_id,
                    ErrorCode.PROFILE_TOO_LARGE,
                    f"profile attributes would exceed {MAX_PROFILE_ATTRIBUTES_BYTES} bytes",
                )
            )
    return outcome


def apply_chunk(
    client_id: int,
    kind: KeyKind,
    rows: Iterable[Row],
    *,
    create_missing: bool,
    now: datetime | None = None,
    with_pc_ids: bool = True,
) -> Outcome:
    """Validate and merge one chunk of rows (``prepare``, then ``write``); the caller owns
    the transaction."""
    prepared = prepare(kind, rows, create_missing=create_missing, now=now)
    return write(client_id, prepared, create_missing=create_missing, with_pc_ids=with_pc_ids)


def _count_empty_rows(
    client_id: int, kind: KeyKind, ids: list[str], create_missing: bool, outcome: Outcome
) -> None:
    """Rows whose values are all empty change nothing, and that is not an error.

    Creating profiles, such a row creates none and succeeds. Updating only, it succeeds when
    its profile exists and counts as not found otherwise, as the single update answers 404
    (docs/api.md#batch-file-update): one query for the chunk's empty rows.
    """
    if create_missing:
        outcome.successful += len(ids)
        return
    existing = store.existing_keys(client_id, kind, ids)
    found = sum(1 for profile_id in ids if profile_id in existing)
    outcome.successful += found
    outcome.not_found += len(ids) - found


def chunked(rows: Iterable[Row], size: int = CHUNK_SIZE) -> Iterator[list[Row]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def apply(
    client_id: int,
    kind: KeyKind,
    rows: Iterable[Row],
    *,
    create_missing: bool,
    now: datetime | None = None,
) -> Outcome:
    """Apply rows chunk by chunk; for inputs small enough to finish inside a request."""
    total = Outcome()
    for chunk in chunked(rows):
        total.add(apply_chunk(client_id, kind, chunk, create_missing=create_missing, now=now))
    return total
