"""The bulk profile APIs: batch files, batch status and JSON bulk (docs/api.md).

Every view sits behind ``profile_api``, which resolves the client and enforces
docs/api.md#authentication; the work happens in ``profiles.api.submissions`` and
``profiles.ingest.processing``.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase

from profiles import tasks
from profiles.access.models import Client
from profiles.api import submissions
from profiles.api.batch_documents import batch_json, status_xml, submitted_xml, summary_json
from profiles.api.envelopes import json_api_error, xml_error
from profiles.api.gate import profile_api
from profiles.ingest.batches import ApiVersion, Batch
from profiles.rules.errors import ErrorCode, ProductError
from profiles.rules.limits import MAX_BATCH_ID_LENGTH
from profiles.tokens.permissions import Permission

OPENAPI_DOCUMENT = Path(__file__).resolve().parent / "openapi.json"


@profile_api(xml_error, needs=Permission.BATCH, methods=("POST",))
def batch_update_v1(request: HttpRequest, client: Client) -> HttpResponse:
    return submitted_xml(request, submissions.submit_file(request, client, ApiVersion.V1))


@profile_api(xml_error, needs=Permission.BATCH, methods=("POST",))
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
        raise ProductError(
            ErrorCode.NOT_FOUND,
            f"No batch {batch_id[:MAX_BATCH_ID_LENGTH]!r} for client {client.code}.",
        )
    return tasks.resume_if_stalled(batch)


@profile_api(xml_error, needs=Permission.BATCH)
def batch_status(request: HttpRequest, client: Client) -> HttpResponseBase:
    batch_id = request.GET.get("batchId", "")
    if not batch_id:
        raise ProductError(ErrorCode.BAD_REQUEST, "The batchId query parameter is required.")
    details = request.GET.get("showDetails", "").lower() == "true"
    return status_xml(_batch(client, batch_id), details=details)


@profile_api(json_api_error, needs=Permission.BATCH, methods=("POST",))
def bulk(request: HttpRequest, client: Client) -> HttpResponse:
    return batch_json(request, submissions.submit_json(request, client))


@profile_api(json_api_error, needs=Permission.BATCH)
def bulk_batch(request: HttpRequest, client: Client, batch_id: str) -> HttpResponse:
    return JsonResponse(summary_json(request, _batch(client, batch_id)))


def openapi(request: HttpRequest) -> HttpResponse:
    document = json.loads(OPENAPI_DOCUMENT.read_text())
    return JsonResponse(document)
