"""The profile fetch (docs/api.md#profile-fetch): find one profile, shape Adobe's document."""

from __future__ import annotations

from typing import Any

from profiles.access.models import Client
from profiles.rules.errors import ErrorCode, ProductError
from profiles.store import KeyKind, reads
from profiles.store.keys import InvalidProfileId, check_profile_id, not_found_message
from profiles.store.models import Profile


def find(client: Client, kind: KeyKind, profile_id: str) -> Profile:
    """The client's profile named by ``profile_id``; ``NOT_FOUND`` in Adobe's words."""
    try:
        # An id no profile can have (control characters, too long) is not looked up at all.
        check_profile_id(kind, profile_id)
    except InvalidProfileId:
        raise ProductError(
            ErrorCode.NOT_FOUND, not_found_message(client.code, kind, profile_id)
        ) from None
    profile = reads.profile(client.pk, kind, profile_id)
    if profile is None:
        raise ProductError(ErrorCode.NOT_FOUND, not_found_message(client.code, kind, profile_id))
    return profile


def document(client: Client, profile: Profile, kind: KeyKind) -> dict[str, Any]:
    """``thirdPartyId`` is present when the profile was fetched by it."""
    fetched: dict[str, Any] = {"client": client.code, "visitorId": profile.pc_id}
    if kind is KeyKind.THIRD_PARTY_ID:
        fetched["thirdPartyId"] = profile.third_party_id
    fetched["modifiedAt"] = profile.modified_at.isoformat()
    fetched["profileAttributes"] = {
        name: {"value": entry["value"], "modifiedAt": entry["modifiedAt"]}
        for name, entry in sorted(profile.attributes.items())
    }
    return fetched
