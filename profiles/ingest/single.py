"""The single profile update's way into the pipeline (docs/api.md#single-profile-update).

The front door parses the call into a profile id and its attributes; this applies them as
one row, updating only: a profile that does not exist is not created.
"""

from __future__ import annotations

from profiles.access.models import Client
from profiles.ingest import pipeline
from profiles.rules.errors import ErrorCode, ProductError
from profiles.store import KeyKind
from profiles.store.keys import not_found_message
from profiles.store.models import Profile


def apply(client: Client, kind: KeyKind, profile_id: str, attributes: dict[str, str]) -> str:
    """Merge the attributes into the existing profile and return its pcId.

    Raises ``ProductError``: the row's own code when the row is refused, ``NOT_FOUND`` when
    no such profile exists.
    """
    row = pipeline.Row(position=1, profile_id=profile_id, attributes=attributes)
    # One row is merged by one statement, which commits on its own: no transaction around
    # it, so PostgreSQL is spared a BEGIN and a COMMIT round trip for every call.
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
