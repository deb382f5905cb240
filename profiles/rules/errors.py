"""The product's errors: one exception type carrying one code from one list.

Domain code raises :class:`ProductError` with an :class:`ErrorCode`; it never picks an HTTP
status. Each wire envelope (``profiles.api.envelopes``) turns the code into its status and
body in one place. The codes, their statuses and meanings are listed in
docs/api.md#error-codes, which a test keeps in step with this enum.

Codes are snake_case. The management API speaks Adobe's Admin API, whose codes are spelled
``Group.Name``; :data:`ADOBE_SPELLING` holds those spellings for the codes it uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class ErrorCode(StrEnum):
    # A request as a whole
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NETWORK_NOT_ALLOWED = "network_not_allowed"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_ACCEPTABLE = "not_acceptable"
    REQUEST_TIMEOUT = "request_timeout"
    LENGTH_REQUIRED = "length_required"
    TOO_LARGE = "too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    TOO_MANY_REQUESTS = "too_many_requests"
    RATE_LIMITED = "rate_limited"
    BAD_IDEMPOTENCY_KEY = "bad_idempotency_key"
    BAD_JSON = "bad_json"
    INVALID = "invalid"
    DATABASE_BUSY = "database_busy"
    INSUFFICIENT_STORAGE = "insufficient_storage"
    # Who is calling the management API
    AUTHENTICATION_REQUIRED = "authentication_required"
    AUTHENTICATION_FAILED = "authentication_failed"
    AUTHENTICATION_MALFORMED = "authentication_malformed"
    AUTHENTICATION_UNSUPPORTED = "authentication_unsupported"
    AUTHENTICATION_LOCKED_OUT = "authentication_locked_out"
    CSRF_FAILED = "csrf_failed"
    CLIENT_NOT_FOUND = "client_not_found"
    TOKEN_NOT_FOUND = "token_not_found"  # noqa: S105 (an error code, not a secret)
    PREVIOUS_TOKEN_NOT_FOUND = "previous_token_not_found"  # noqa: S105 (an error code)
    TOKEN_ENCRYPTION_KEY_MISSING = "token_encryption_key_missing"  # noqa: S105 (an error code)
    TOKEN_LIMIT = "token_limit"  # noqa: S105 (an error code)
    # What a profile API caller's token may call (docs/tokens.md#permissions)
    TOKEN_SCOPE = "token_scope"  # noqa: S105 (an error code)
    # One row of a batch (recorded as a failed row; the rest of the batch goes on)
    MISSING_ID = "missing_id"
    ID_TOO_LONG = "id_too_long"
    BAD_ID = "bad_id"
    BAD_ATTRIBUTE_NAME = "bad_attribute_name"
    BAD_VALUE = "bad_value"
    VALUE_TOO_LONG = "value_too_long"
    WRONG_CELL_COUNT = "wrong_cell_count"
    BAD_ENCODING = "bad_encoding"
    BAD_PROFILE = "bad_profile"
    PROFILE_TOO_LARGE = "profile_too_large"


ROW_CODES = frozenset(
    {
        ErrorCode.MISSING_ID,
        ErrorCode.ID_TOO_LONG,
        ErrorCode.BAD_ID,
        ErrorCode.BAD_ATTRIBUTE_NAME,
        ErrorCode.BAD_VALUE,
        ErrorCode.VALUE_TOO_LONG,
        ErrorCode.WRONG_CELL_COUNT,
        ErrorCode.BAD_ENCODING,
        ErrorCode.BAD_PROFILE,
        ErrorCode.PROFILE_TOO_LARGE,
    }
)

ADOBE_SPELLING: Mapping[ErrorCode, str] = {
    ErrorCode.FORBIDDEN: "Access.Denied",
    ErrorCode.METHOD_NOT_ALLOWED: "Method.NotAllowed",
    ErrorCode.NOT_ACCEPTABLE: "MediaType.NotAcceptable",
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: "MediaType.Unsupported",
    ErrorCode.LENGTH_REQUIRED: "Body.LengthRequired",
    ErrorCode.TOO_LARGE: "Body.TooLarge",
    ErrorCode.BAD_JSON: "Body.Invalid",
    ErrorCode.INVALID: "Parameter.Invalid",
    ErrorCode.AUTHENTICATION_REQUIRED: "Authentication.Required",
    ErrorCode.AUTHENTICATION_FAILED: "Authentication.Failed",
    ErrorCode.AUTHENTICATION_MALFORMED: "Authentication.Malformed",
    ErrorCode.AUTHENTICATION_UNSUPPORTED: "Authentication.Unsupported",
    ErrorCode.AUTHENTICATION_LOCKED_OUT: "Authentication.LockedOut",
    ErrorCode.CSRF_FAILED: "Csrf.Failed",
    ErrorCode.CLIENT_NOT_FOUND: "Client.NotFound",
    ErrorCode.TOKEN_NOT_FOUND: "Token.NotFound",
    ErrorCode.PREVIOUS_TOKEN_NOT_FOUND: "Token.PreviousNotFound",
    ErrorCode.TOKEN_LIMIT: "Token.LimitReached",
}


class ProductError(Exception):
    """A refusal the caller is told about: what went wrong (``code``) and in words.

    ``retry_after`` is the number of seconds after which the same request may succeed.
    ``headers`` carries what a front door adds for its protocol (``WWW-Authenticate``,
    ``Allow``); domain code leaves it empty.
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        retry_after: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.headers = dict(headers or {})
