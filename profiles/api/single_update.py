"""The single profile update's front door (docs/api.md#single-profile-update): parsing.

Parameters come from the query string and, for a POST, from a form-encoded or JSON object
body (the body wins when both name a parameter). ``mboxPC`` or ``mbox3rdPartyId`` names the
profile (an empty one counts as absent); ``profile.<name>=<value>`` are the attributes; any
other parameter (Adobe clients add mbox parameters) is ignored. The profile must exist:
this endpoint updates only. The update goes through ``profiles.ingest.single``, into the
one pipeline every way in shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from django.core.handlers.wsgi import get_bytes_from_wsgi
from django.http import HttpRequest

from profiles.api import bodies, json_body
from profiles.rules.errors import ErrorCode, ProductError
from profiles.rules.limits import MAX_GET_QUERY_BYTES, MAX_POST_BYTES
from profiles.store import KeyKind

ATTRIBUTE_PREFIX = "profile."
ID_PARAMETERS = {"mboxPC": KeyKind.PC_ID, "mbox3rdPartyId": KeyKind.THIRD_PARTY_ID}
NOT_A_JSON_OBJECT = "The body is not a valid JSON object."


@dataclass(frozen=True, slots=True)
class SingleUpdate:
    kind: KeyKind
    profile_id: str
    attributes: dict[str, str]


def parse(request: HttpRequest) -> SingleUpdate:
    """The update the request asks for, or ``ProductError`` saying what is wrong."""
    query = get_bytes_from_wsgi(request.META, "QUERY_STRING", "")
    body = _read_body(request, len(query))
    parameters = dict(_form_pairs(query))
    if body:
        parameters.update(_body_parameters(request, body))
    return _single_update(parameters)


def _read_body(request: HttpRequest, query_bytes: int) -> bytes:
    if request.method == "GET":
        if query_bytes > MAX_GET_QUERY_BYTES:
            raise ProductError(
                ErrorCode.TOO_LARGE, f"The query string exceeds {MAX_GET_QUERY_BYTES} bytes."
            )
        return b""
    return bodies.read_body(
        request,
        max_bytes=MAX_POST_BYTES - query_bytes,
        too_large=lambda: ProductError(
            ErrorCode.TOO_LARGE, f"The request exceeds {MAX_POST_BYTES} bytes."
        ),
    )


def _form_pairs(raw: bytes) -> list[tuple[str, str]]:
    try:
        text = raw.decode()
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise ProductError(ErrorCode.BAD_REQUEST, "The parameters are not valid UTF-8.") from None


def _body_parameters(request: HttpRequest, body: bytes) -> dict[str, str]:
    content_type = request.content_type or ""
    if content_type == "multipart/form-data":
        fields, _ = bodies.form(request, body)
        return {name: fields.get(name, "") for name in fields}
    if content_type.endswith("json") or body.lstrip()[:1] == b"{":
        return _json_parameters(body)
    return dict(_form_pairs(body))


def _json_parameters(body: bytes) -> dict[str, str]:
    # A number is stored as it was written (docs/api.md#single-profile-update): it arrives as
    # its text, like a string.
    document = json_body.loads(body, ErrorCode.BAD_REQUEST, NOT_A_JSON_OBJECT, numbers_as_text=True)
    if not isinstance(document, dict):
        raise ProductError(ErrorCode.BAD_REQUEST, NOT_A_JSON_OBJECT)
    parameters: dict[str, str] = {}
    for name, value in document.items():
        if value is None:
            parameters[name] = ""
        elif isinstance(value, str):
            parameters[name] = value
        else:
            raise ProductError(
                ErrorCode.BAD_REQUEST, f"The value of {name!r} must be a string or a number."
            )
    return parameters


def _single_update(parameters: dict[str, str]) -> SingleUpdate:
    named = [
        (kind, parameters[name]) for name, kind in ID_PARAMETERS.items() if parameters.get(name)
    ]
    if not named:
        raise ProductError(ErrorCode.BAD_REQUEST, "Name the profile with mboxPC or mbox3rdPartyId.")
    if len(named) > 1:
        raise ProductError(ErrorCode.BAD_REQUEST, "Send either mboxPC or mbox3rdPartyId, not both.")
    attributes = {
        name.removeprefix(ATTRIBUTE_PREFIX): value
        for name, value in parameters.items()
        if name.startswith(ATTRIBUTE_PREFIX)
    }
    if not attributes:
        raise ProductError(ErrorCode.BAD_REQUEST, "No profile.<name>=<value> parameter to update.")
    kind, profile_id = named[0]
    return SingleUpdate(kind, profile_id, attributes)
