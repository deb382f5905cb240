"""The product's fixed limits (docs/api.md#limits), each written once.

Limits an operator may change (batch size and rows, rates, retention) are settings; these
are part of the wire contract and never change.
"""

from __future__ import annotations

# A pcId or thirdPartyId, and an attribute's value, in characters.
MAX_ID_LENGTH = 256
MAX_VALUE_LENGTH = 256
# An attribute's name, in characters.
MAX_NAME_LENGTH = 128
# A profile's stored attributes, as compact UTF-8 JSON.
MAX_PROFILE_ATTRIBUTES_BYTES = 64 * 1024
# The single update: a GET's query string, and a POST's query string and body together.
MAX_GET_QUERY_BYTES = 8 * 1024
MAX_POST_BYTES = 60 * 1024
# A batch id (``<client>-<epoch ms>-<8 digits>``) is never longer than this.
MAX_BATCH_ID_LENGTH = 100
# The Idempotency-Key header of a bulk submission, in printable characters.
MAX_IDEMPOTENCY_KEY_LENGTH = 255
