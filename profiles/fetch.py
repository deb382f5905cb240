"""The profile fetch (SPEC 6.2): find one profile and shape it as Adobe's JSON document."""

from __future__ import annotations

from typing import Any

from profiles import api_reads
from profiles.ingest import RowError, check_profile_id
from profiles.models import Client, Profile
from profiles.responses import ApiError
from profiles.single_update import not_found_message
from profiles.store import KeyKind


def find(client: Client, kind: KeyKind, profile_id: str) -> Profile:
    """The client's profile named by ``profile_id``; ``ApiError`` 404 in Adobe's words."""
    try:
        # An id no profile can have (control characters, too long) is not looked up at all.
        check_profile_id(kind, profile_id)
    except RowError:
        raise ApiError(404, not_found_message(client, kind, profile_id)) from None
    profile = api_reads.profile(client.pk, kind, profile_id)
    if profile is None:
        raise ApiError(404, not_found_message(client, kind, profile_id))
    return profile


def document(client: Client, profile: Profile, kind: KeyKind) -> dict[str, Any]:
    """``thirdPartyId`` is present when the profile was fetched by it, as in SPEC 6.2."""
    fetched: dict[str, Any] = {"client": client.code, "visitorId": profile.pc_id}
    if kind is KeyKind.THIRD_PARTY_ID:
        fetched["thirdPartyId"] = profile.third_party_id
    fetched["modifiedAt"] = profile.modified_at.isoformat()
    fetched["profileAttributes"] = {
        name: {"value": entry["value"], "modifiedAt": entry["modifiedAt"]}
        for name, entry in sorted(profile.attributes.items())
    }
    return fetched
