"""The single profile update's way into the pipeline (docs/api.md#single-profile-update).

The front door parses the call into a profile id and its attributes; this applies them as
one row, updating only: a profile that does not exist is not created.

On SQLite, updates that arrive together in one process are committed together
(``SINGLE_UPDATE_GROUP_COMMIT``, docs/operations.md#group-commit); each caller is still
answered only once its own update has committed, and with its own answer.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from profiles.access.models import Client
from profiles.ingest import pipeline
from profiles.ingest.group_commit import GroupCommitter
from profiles.rules.errors import ErrorCode, ProductError
from profiles.store import KeyKind
from profiles.store.keys import not_found_message
from profiles.store.models import Profile

_GROUP = GroupCommitter()


def apply(client: Client, kind: KeyKind, profile_id: str, attributes: dict[str, str]) -> str:
    """Merge the attributes into the existing profile and return its pcId.

    Raises ``ProductError``: the row's own code when the row is refused, ``NOT_FOUND`` when
    no such profile exists.
    """
    if _grouped():
        return _GROUP.run(
            lambda: _apply(client, kind, profile_id, attributes),
            patience=float(connection.settings_dict["OPTIONS"].get("timeout", 5)),
        )
    return _apply(client, kind, profile_id, attributes)


def _grouped() -> bool:
    """Group commit pays on SQLite, whose writers pass one at a time; on PostgreSQL each
    update stays one statement. A caller inside a transaction of its own applies there."""
    return (
        settings.SINGLE_UPDATE_GROUP_COMMIT
        and connection.vendor == "sqlite"
        and not connection.in_atomic_block
    )


def _apply(client: Client, kind: KeyKind, profile_id: str, attributes: dict[str, str]) -> str:
    row = pipeline.Row(position=1, profile_id=profile_id, attributes=attributes)
    # Not grouped, one row is merged by one statement, which commits on its own: no
    # transaction around it, so PostgreSQL is spared a BEGIN and a COMMIT round trip.
    outcome = pipeline.apply(client.pk, kind, [row], create_missing=False)
    if outcome.failures:
        failure = outcome.failures[0]
        raise ProductError(ErrorCode(failure.code), failure.message)
    if outcome.not_found:
        raise ProductError(ErrorCode.NOT_FOUND, not_found_message(client.code, kind, profile_id))
    pc_id = outcome.pc_ids.get(profile_id)
    if pc_id is None:
        # Every value was empty, so nothing was written; the profile must still exist.
        pc_id = (
            Profile.objects.filter(client=client, **{kind.column: profile_id})
            .values_list("pc_id", flat=True)
            .first()
        )
    if pc_id is None:
        raise ProductError(ErrorCode.NOT_FOUND, not_found_message(client.code, kind, profile_id))
    return pc_id
