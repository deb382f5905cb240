"""The Adobe-compatible single-profile APIs (SPEC 6.1, 6.2), behind ``profile_api``."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from profiles import fetch, single_update
from profiles.api_auth import profile_api
from profiles.models import Client
from profiles.responses import rest_error, xml_elements, xml_error, xml_response
from profiles.store import KeyKind


@profile_api(xml_error, methods=("GET", "POST"))
def update(request: HttpRequest, client: Client) -> HttpResponse:
    pc_id = single_update.apply(client, single_update.parse(request))
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
