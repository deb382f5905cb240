"""The encrypted copy of a retrievable token (docs/tokens.md#retrievable-tokens).

Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) under the keys of
``TOKEN_ENCRYPTION_KEYS``: the first key encrypts, every key decrypts (``MultiFernet``), so
keys are rotated by putting a new one first and removing an old one once no copy needs it.
The digest stays the only thing the token check reads; a copy is only ever opened to show
the token to an Approver again.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# What is missing and where it is set: every message about a missing key says it so.
NO_KEY = "no token encryption key is configured (TOKEN_ENCRYPTION_KEYS)"
MISSING_KEYS = f"{NO_KEY[0].upper()}{NO_KEY[1:]}, so a retrievable token cannot be kept."


def is_configured() -> bool:
    return bool(settings.TOKEN_ENCRYPTION_KEYS)


def _fernet() -> MultiFernet:
    if not is_configured():
        raise ImproperlyConfigured(MISSING_KEYS)
    return MultiFernet([Fernet(key) for key in settings.TOKEN_ENCRYPTION_KEYS])


def seal(plaintext: str) -> str:
    """The plaintext encrypted under the first key, as text for a database column."""
    return _fernet().encrypt(plaintext.encode("ascii")).decode("ascii")


def unseal(ciphertext: str) -> str | None:
    """The plaintext of a sealed copy, or ``None`` when no configured key opens it (the key
    it was sealed with has been removed), or when no key is configured at all."""
    if not is_configured():
        return None
    try:
        return _fernet().decrypt(ciphertext.encode("ascii")).decode("ascii")
    except InvalidToken:
        return None
