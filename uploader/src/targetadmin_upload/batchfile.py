"""Adobe's batch file format as targetadmin reads it (docs/api.md#the-file), and its limits.

The server splits each line into cells on its raw commas, then form-decodes every cell once
(``%XX`` escapes, ``+`` is a space) and trims blanks around it. So every character of a value
that is not unreserved (letters, digits, ``-._~``) is percent-encoded here, non-ASCII as its
UTF-8 bytes: commas, ``%``, ``+``, quotes, spaces and line breaks all arrive as sent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from string import ascii_letters, digits
from urllib.parse import quote

PREFIX = b"batch="
KEY_KINDS = ("thirdPartyId", "pcId")

# The server's defaults (BATCH_MAX_ROWS, BATCH_MAX_BYTES): at most this many data rows, and a
# body (``batch=`` and the header included) strictly smaller than this many bytes.
MAX_ROWS = 500_000
MAX_BYTES = 50 * 1024 * 1024


UNRESERVED = frozenset(ascii_letters + digits + "-._~")
_UNRESERVED_ONLY = re.compile(r"[A-Za-z0-9._~-]*")
_RESERVED = re.compile(r"[^A-Za-z0-9._~-]")
_ESCAPES = {chr(code): f"%{code:02X}" for code in range(128) if chr(code) not in UNRESERVED}


def _escape(match: re.Match[str]) -> str:
    return _ESCAPES[match.group()]


def encode_cell(value: str) -> str:
    """``value`` with every character but letters, digits and ``-._~`` as UTF-8 ``%XX``."""
    if _UNRESERVED_ONLY.fullmatch(value):
        return value  # the common cell, checked in one step
    if value.isascii():
        return _RESERVED.sub(_escape, value)  # quote()'s result, faster for few escapes
    return quote(value, safe="")


def encode_line(cells: Sequence[str]) -> bytes:
    """One batch file line; empty trailing cells are left out (the server reads them as empty)."""
    end = len(cells)
    while end > 1 and not cells[end - 1]:
        end -= 1
    return (",".join([encode_cell(cell) for cell in cells[:end]]) + "\n").encode("ascii")


def encode_header(kind: str, names: Sequence[str]) -> bytes:
    """``batch=`` and the header row: the key column, then the attribute names."""
    return PREFIX + encode_line([kind, *names])
