"""The Adobe-compatible single-profile APIs (docs/api.md#single-profile-update,
docs/api.md#profile-fetch), behind the profile API gate.

Each is written over an ``ApiCall`` and answers an ``Answer``, so that Django's URL
resolver and the fast lane in front of Django serve the same code
(docs/operations.md#the-api-path).
"""

from __future__ import annotations

from profiles.access.models import Client
from profiles.api import fetch, single_update
from profiles.api.calls import ApiCall
from profiles.api.envelopes import (
    Answer,
    json_answer,
    rest_error,
    xml_answer,
    xml_elements,
    xml_error,
)
from profiles.api.gate import profile_call
from profiles.ingest import single
from profiles.store import KeyKind
from profiles.tokens.permissions import Permission

UPDATED_MESSAGE = "Request successfully submitted"


@profile_call(xml_error, needs=Permission.UPDATE, methods=("GET", "POST"))
def update(call: ApiCall, client: Client) -> Answer:
    wanted = single_update.parse(call)
    pc_id = single.apply(client, wanted.kind, wanted.profile_id, wanted.attributes)
    return xml_answer(
        xml_elements([("success", "true"), ("pcId", pc_id), ("message", UPDATED_MESSAGE)])
    )


@profile_call(rest_error, needs=Permission.FETCH, client_param="client")
def fetch_by_pc_id(call: ApiCall, client: Client, pc_id: str) -> Answer:
    profile = fetch.find(client, KeyKind.PC_ID, pc_id)
    return json_answer(fetch.document(client, profile, KeyKind.PC_ID))


@profile_call(rest_error, needs=Permission.FETCH, client_param="client")
def fetch_by_third_party_id(call: ApiCall, client: Client, third_party_id: str) -> Answer:
    profile = fetch.find(client, KeyKind.THIRD_PARTY_ID, third_party_id)
    return json_answer(fetch.document(client, profile, KeyKind.THIRD_PARTY_ID))
