"""The profile authentication token format (docs/tokens.md#format).

A token is ``tpa_`` + 43 base62 characters drawn from ``secrets`` (256 bits) + a 6-character
base62 CRC32 of the random part. The prefix names the token's type for secret scanners; the
checksum lets a typo or a truncated paste be refused before any database look-up.
Only the SHA-256 digest and the last four characters are ever stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import zlib

PREFIX = "tpa_"
ALPHABET = string.digits + string.ascii_letters
RANDOM_LENGTH = 43  # 62**43 > 2**256
CHECKSUM_LENGTH = 6
TOKEN_LENGTH = len(PREFIX) + RANDOM_LENGTH + CHECKSUM_LENGTH
_ALPHABET_SET = frozenset(ALPHABET)


class MalformedToken(ValueError):
    """The string cannot be a token: wrong prefix, length, characters or checksum."""


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, remainder = divmod(number, 62)
        digits.append(ALPHABET[remainder])
    return "".join(reversed(digits))


def _checksum(random_part: str) -> str:
    return _base62(zlib.crc32(random_part.encode("ascii")), CHECKSUM_LENGTH)


def generate() -> str:
    random_part = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return PREFIX + random_part + _checksum(random_part)


def check_format(candidate: str) -> str:
    """Return ``candidate`` if it is shaped like a token, else raise ``MalformedToken``."""
    if len(candidate) != TOKEN_LENGTH or not candidate.startswith(PREFIX):
        raise MalformedToken("token is not a profile authentication token")
    body = candidate[len(PREFIX) :]
    if not _ALPHABET_SET.issuperset(body):
        raise MalformedToken("token contains characters a token never has")
    random_part, checksum = body[:RANDOM_LENGTH], body[RANDOM_LENGTH:]
    if not hmac.compare_digest(checksum, _checksum(random_part)):
        raise MalformedToken("token checksum does not match")
    return candidate


def is_well_formed(candidate: str) -> bool:
    try:
        check_format(candidate)
    except MalformedToken:
        return False
    return True


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def last_four(token: str) -> str:
    return token[-4:]


def mask(last_four_chars: str) -> str:
    return f"{PREFIX}…{last_four_chars}"
