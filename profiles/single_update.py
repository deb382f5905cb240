"""The single profile update (SPEC 6.1): parse the call into one ``Row`` and ingest it.

Parameters come from the query string and, for a POST, from a form-encoded or JSON object
body (the body wins when both name a parameter). ``mboxPC`` or ``mbox3rdPartyId`` names the
profile (an empty one counts as absent); ``profile.<name>=<value>`` are the attributes; any
other parameter (Adobe clients add mbox parameters) is ignored. The profile must exist:
this endpoint updates only. The update goes through ``profiles.ingest``, like every other
way in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import parse_qsl

from django.core.handlers.wsgi import get_bytes_from_wsgi
from django.db import transaction
from django.http import HttpRequest

from profiles import ingest
from profiles.models import Client, Profile
from profiles.responses import ApiError
from profiles.store import KeyKind

MAX_GET_QUERY_BYTES = 8 * 1024
MAX_POST_BYTES = 60 * 1024
ATTRIBUTE_PREFIX = "profile."
ID_PARAMETERS = {"mboxPC": KeyKind.PC_ID, "mbox3rdPartyId": KeyKind.THIRD_PARTY_ID}


@dataclass(frozen=True, slots=True)
class SingleUpdate:
    kind: KeyKind
    profile_id: str
    attributes: dict[str, str]


def not_found_message(client: Client, kind: KeyKind, profile_id: str) -> str:
    """Adobe's wording for a profile that does not exist (SPEC 6.2)."""
    where = "third party id" if kind is KeyKind.THIRD_PARTY_ID else "mboxPC"
    return f"No profile found for client {client.code} with {where}={profile_id}"


def parse(request: HttpRequest) -> SingleUpdate:
    """The update the request asks for, or ``ApiError`` (400, 413) saying what is wrong."""
    query = get_bytes_from_wsgi(request.META, "QUERY_STRING", "")
    body = _read_body(request, len(query))
    parameters = dict(_form_pairs(query))
    if body:
        parameters.update(_body_parameters(request, body))
    return _single_update(parameters)


def apply(client: Client, update: SingleUpdate) -> str:
    """Merge the update into the existing profile and return its pcId; 404/400/413 otherwise."""
    row = ingest.Row(position=1, profile_id=update.profile_id, attributes=update.attributes)
    with transaction.atomic():
        outcome = ingest.apply(client.pk, update.kind, [row], create_missing=False)
    if outcome.failures:
        failure = outcome.failures[0]
        status = 413 if failure.code == "profile_too_large" else 400
        raise ApiError(status, failure.message, code=failure.code)
    if outcome.not_found:
        raise ApiError(404, not_found_message(client, update.kind, update.profile_id))
    pc_id = outcome.pc_ids.get(update.profile_id)
    if pc_id is None:
        # Every value was empty, so nothing was written; the profile must still exist.
        pc_id = (
            Profile.objects.filter(client=client, **{update.kind.column: update.profile_id})
            .values_list("pc_id", flat=True)
            .first()
        )
    if pc_id is None:
        raise ApiError(404, not_found_message(client, update.kind, update.profile_id))
    return pc_id


def _read_body(request: HttpRequest, query_bytes: int) -> bytes:
    if request.method == "GET":
        if query_bytes > MAX_GET_QUERY_BYTES:
            raise ApiError(413, f"The query string exceeds {MAX_GET_QUERY_BYTES} bytes.")
        return b""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ApiError(400, "The Content-Length header is not a number.") from None
    if query_bytes + declared > MAX_POST_BYTES:
        raise ApiError(413, f"The request exceeds {MAX_POST_BYTES} bytes.")
    body = request.body
    if query_bytes + len(body) > MAX_POST_BYTES:
        raise ApiError(413, f"The request exceeds {MAX_POST_BYTES} bytes.")
    return body


def _form_pairs(raw: bytes) -> list[tuple[str, str]]:
    try:
        text = raw.decode()
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise ApiError(400, "The parameters are not valid UTF-8.") from None


def _body_parameters(request: HttpRequest, body: bytes) -> dict[str, str]:
    content_type = request.content_type or ""
    if content_type == "multipart/form-data":
        return {name: request.POST[name] for name in request.POST}
    if content_type.endswith("json") or body.lstrip()[:1] == b"{":
        return _json_parameters(body)
    return dict(_form_pairs(body))


def _json_parameters(body: bytes) -> dict[str, str]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise ApiError(400, "The body is not a valid JSON object.") from None
    if not isinstance(document, dict):
        raise ApiError(400, "The body is not a valid JSON object.")
    parameters: dict[str, str] = {}
    for name, value in document.items():
        if value is None:
            parameters[name] = ""
        elif isinstance(value, str):
            parameters[name] = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            parameters[name] = json.dumps(value)
        else:
            raise ApiError(400, f"The value of {name!r} must be a string or a number.")
    return parameters


def _single_update(parameters: dict[str, str]) -> SingleUpdate:
    named = [
        (kind, parameters[name]) for name, kind in ID_PARAMETERS.items() if parameters.get(name)
    ]
    if not named:
        raise ApiError(400, "Name the profile with mboxPC or mbox3rdPartyId.")
    if len(named) > 1:
        raise ApiError(400, "Send either mboxPC or mbox3rdPartyId, not both.")
    attributes = {
        name.removeprefix(ATTRIBUTE_PREFIX): value
        for name, value in parameters.items()
        if name.startswith(ATTRIBUTE_PREFIX)
    }
    if not attributes:
        raise ApiError(400, "No profile.<name>=<value> parameter to update.")
    kind, profile_id = named[0]
    return SingleUpdate(kind, profile_id, attributes)
