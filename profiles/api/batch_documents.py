"""What the bulk endpoints answer for a batch: XML for batch files, JSON for JSON bulk.

See docs/api.md#batch-file-update, docs/api.md#batch-status and docs/api.md#json-bulk-update.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse

from profiles.api.envelopes import XML_CONTENT_TYPE, xml_elements, xml_response
from profiles.ingest.batches import Batch, Status

SUBMITTED_MESSAGE = "Batch submitted for processing"


def batch_status_url(request: HttpRequest, batch: Batch) -> str:
    path = reverse("batch_status", kwargs={"client": batch.client.code})
    return request.build_absolute_uri(f"{path}?{urlencode({'batchId': batch.pk})}")


def submitted_xml(request: HttpRequest, batch: Batch) -> HttpResponse:
    return xml_response(
        xml_elements(
            [
                ("success", "true"),
                ("batchStatus", batch_status_url(request, batch)),
                ("message", SUBMITTED_MESSAGE),
            ]
        )
    )


def _counts(batch: Batch) -> list[tuple[str, object]]:
    return [
        ("consumedCount", batch.consumed_count),
        ("successfulUpdates", batch.successful_updates),
        ("profilesNotFound", batch.profiles_not_found),
        ("failedUpdates", batch.failed_updates),
    ]


def status_xml(batch: Batch, *, details: bool) -> HttpResponseBase:
    """The batch status document; with ``details``, the counts and one ``<profile>`` per failed row.

    The failed rows are streamed, so a batch with many of them is never built whole.
    """
    summary = [("batchId", batch.pk), ("status", batch.status), ("batchSize", batch.batch_size)]
    if not details:
        return xml_response(xml_elements(summary))

    def body() -> Iterator[str]:
        yield f'<?xml version="1.0" encoding="UTF-8"?>\n<response>{xml_elements(summary)}'
        yield xml_elements(_counts(batch))
        for failure in batch.failures.order_by("position").iterator(chunk_size=2000):
            fields = [
                ("id", failure.profile_id),
                ("status", "failed"),
                ("message", failure.describe(batch.api_version)),
            ]
            yield f"<profile>{xml_elements(fields)}</profile>"
        yield "</response>"

    return StreamingHttpResponse(body(), content_type=XML_CONTENT_TYPE)


def json_status_url(request: HttpRequest, batch: Batch) -> str:
    path = reverse("bulk_batch", kwargs={"client": batch.client.code, "batch_id": batch.pk})
    return request.build_absolute_uri(path)


def summary_json(request: HttpRequest, batch: Batch) -> dict[str, Any]:
    return {
        "batchId": batch.pk,
        "status": batch.status,
        "batchSize": batch.batch_size,
        "consumedCount": batch.consumed_count,
        "successfulUpdates": batch.successful_updates,
        "profilesNotFound": batch.profiles_not_found,
        "failedUpdates": batch.failed_updates,
        "failures": [
            {
                "index": failure.position,
                "id": failure.profile_id,
                "code": failure.code,
                "message": failure.message,
            }
            for failure in batch.failures.order_by("position")
        ],
        "statusUrl": json_status_url(request, batch),
    }


def batch_json(request: HttpRequest, batch: Batch) -> JsonResponse:
    """200 once the batch is finished, 202 while it continues in the background."""
    status = 202 if batch.status == Status.INCOMPLETE else 200
    return JsonResponse(summary_json(request, batch), status=status)
