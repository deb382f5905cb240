"""Profile keys: which text may name a profile, and which text the store can hold at all
(docs/api.md#limits).

The writes check each row's key here before merging it; the reads (the profile fetch, the
Profiles page's look-up) check a key here before looking it up, so a key no profile can
have is never queried.
"""

from __future__ import annotations

import re

from profiles.rules.errors import ErrorCode
from profiles.rules.limits import MAX_ID_LENGTH
from profiles.store import KeyKind

# What the store cannot hold: NUL (PostgreSQL refuses it, so no database takes it) and a
# lone surrogate ("\ud800" in JSON), which is not a character: no UTF-8 text holds one.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class InvalidProfileId(ValueError):
    """Why a text can name no profile: the row's error code, and in words."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def is_storable(text: str) -> bool:
    """Whether the store can hold ``text``: the one rule every way in shares.

    Bytes decoded as UTF-8 never hold a lone surrogate, but a JSON escape can make one.
    """
    if "\x00" in text:
        return False
    if text.isascii():  # constant time: almost every row ends here
        return True
    try:
        text.encode()  # in C, faster than searching; only a lone surrogate fails
    except UnicodeEncodeError:
        return False
    return True


def shown_storable(text: str) -> str:
    """``text`` with each character the store cannot hold shown as U+FFFD.

    For recording a failed row as it was sent: a row can fail precisely for holding one.
    """
    return text if is_storable(text) else _UNSTORABLE.sub("\ufffd", text)


def why_unstorable(text: str) -> str:
    """Why ``is_storable(text)`` is false, for a row's failure message."""
    if "\x00" in text:
        return "contains a NUL character"
    return "is not valid UTF-8 text (it holds a lone surrogate)"


def check_profile_id(kind: KeyKind, profile_id: str) -> None:
    """Raise ``InvalidProfileId`` unless ``profile_id`` could name a profile by ``kind``."""
    if not is_storable(profile_id):
        raise InvalidProfileId(ErrorCode.BAD_ID, f"{kind} {why_unstorable(profile_id)}")
    if not profile_id:
        raise InvalidProfileId(ErrorCode.MISSING_ID, f"{kind} is empty")
    if len(profile_id) > MAX_ID_LENGTH:
        raise InvalidProfileId(
            ErrorCode.ID_TOO_LONG, f"{kind} is longer than {MAX_ID_LENGTH} characters"
        )
    if kind is KeyKind.THIRD_PARTY_ID and ("+" in profile_id or "/" in profile_id):
        raise InvalidProfileId(ErrorCode.BAD_ID, "thirdPartyId must not contain '+' or '/'")
    if not profile_id.isprintable():
        raise InvalidProfileId(ErrorCode.BAD_ID, f"{kind} contains control characters")


def not_found_message(client_code: str, kind: KeyKind, profile_id: str) -> str:
    """Adobe's wording for a profile that does not exist (docs/api.md#profile-fetch)."""
    where = "third party id" if kind is KeyKind.THIRD_PARTY_ID else "mboxPC"
    return f"No profile found for client {client_code} with {where}={profile_id}"
