"""The bulk profile APIs: batch files (SPEC 6.3), batch status (6.4), JSON bulk (6.5).

Every view sits behind ``profile_api``, which resolves the client and enforces SPEC
section 5; the work happens in ``profiles.submissions`` and ``profiles.processing``.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase

from profiles import submissions, tasks
from profiles.api_auth import profile_api
from profiles.batch_responses import batch_json, status_xml, submitted_xml, summary_json
from profiles.batches import ApiVersion, Batch
from profiles.models import Client
from profiles.responses import ApiError, json_api_error, xml_error

MAX_BATCH_ID_LENGTH = 100  # as Batch.id
OPENAPI_DOCUMENT = Path(__file__).resolve().parent / "openapi.json"


@profile_api(xml_error, methods=("POST",))
def batch_update_v1(request: HttpRequest, client: Client) -> HttpResponse:
    return submitted_xml(request, submissions.submit_file(request, client, ApiVersion.V1))


@profile_api(xml_error, methods=("POST",))
def batch_update_v2(request: HttpRequest, client: Client) -> HttpResponse:
    return submitted_xml(request, submissions.submit_file(request, client, ApiVersion.V2))


def _batch(client: Client, batch_id: str) -> Batch:
    # An id no batch can have (PostgreSQL cannot even compare one holding NUL) is not looked up.
    can_exist = len(batch_id) <= MAX_BATCH_ID_LENGTH and batch_id.isprintable()
    batches = (
        Batch.objects.filter(client=client, pk=batch_id) if can_exist else Batch.objects.none()
    )
    batch = batches.select_related("client").first()
    if batch is None:
        raise ApiError(404, f"No batch {batch_id[:100]!r} for client {client.code}.")
    return tasks.resume_if_stalled(batch)


@profile_api(xml_error)
def batch_status(request: HttpRequest, client: Client) -> HttpResponseBase:
    batch_id = request.GET.get("batchId", "")
    if not batch_id:
        raise ApiError(400, "The batchId query parameter is required.")
    details = request.GET.get("showDetails", "").lower() == "true"
    return status_xml(_batch(client, batch_id), details=details)


@profile_api(json_api_error, methods=("POST",))
def bulk(request: HttpRequest, client: Client) -> HttpResponse:
    return batch_json(request, submissions.submit_json(request, client))


@profile_api(json_api_error)
def bulk_batch(request: HttpRequest, client: Client, batch_id: str) -> HttpResponse:
    return JsonResponse(summary_json(request, _batch(client, batch_id)))


def openapi(request: HttpRequest) -> HttpResponse:
    document = json.loads(OPENAPI_DOCUMENT.read_text())
    return JsonResponse(document)
