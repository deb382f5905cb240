"""The Adobe-compatible single-profile APIs (docs/api.md#single-profile-update,
docs/api.md#profile-fetch), behind ``profile_api``."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from profiles.access.models import Client
from profiles.api import fetch, single_update
from profiles.api.envelopes import rest_error, xml_elements, xml_error, xml_response
from profiles.api.gate import profile_api
from profiles.ingest import single
from profiles.store import KeyKind


@profile_api(xml_error, methods=("GET", "POST"))
def update(request: HttpRequest, client: Client) -> HttpResponse:
    wanted = single_update.parse(request)
    pc_id = single.apply(client, wanted.kind, wanted.profile_id, wanted.attributes)
    return xml_response(
        xml_elements(
            [("success", "true"), ("pcId", pc_id), ("message", "Request successfully submitted")]
        )
    )


@profile_api(rest_error, client_param="client")
def fetch_by_pc_id(request: HttpRequest, client: Client, pc_id: str) -> HttpResponse:
    profile = fetch.find(client, KeyKind.PC_ID, pc_id)
    return JsonResponse(fetch.document(client, profile, KeyKind.PC_ID))


@profile_api(rest_error, client_param="client")
def fetch_by_third_party_id(
    request: HttpRequest, client: Client, third_party_id: str
) -> HttpResponse:
    profile = fetch.find(client, KeyKind.THIRD_PARTY_ID, third_party_id)
    return JsonResponse(fetch.document(client, profile, KeyKind.THIRD_PARTY_ID))
