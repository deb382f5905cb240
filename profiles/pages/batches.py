"""The Batches pages: a client's recent batches, one batch's failed rows, and their CSV."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from profiles.access.models import Client, Role
from profiles.ingest.batches import Batch, BatchFailure
from profiles.pages.permissions import client_for
from targetadmin_upload.spreadsheet import spreadsheet_safe

RECENT_BATCHES = 50
FAILURES_SHOWN = 500
REFRESH_SECONDS = 3
VIEW_BATCHES = "view batches"


def _batch(client: Client, batch_id: str) -> Batch:
    batch = Batch.objects.filter(client=client, pk=batch_id).first()
    if batch is None:
        raise Http404("No such batch.")
    return batch


@login_required
@require_safe
def batches(request: HttpRequest, client_code: str) -> HttpResponse:
    client, _ = client_for(request.user, client_code, Role.OBSERVER, action=VIEW_BATCHES)
    recent = list(Batch.objects.filter(client=client)[:RECENT_BATCHES])
    refresh = any(not batch.is_finished for batch in recent)
    context = {"client": client, "batches": recent, "refresh_seconds": REFRESH_SECONDS * refresh}
    return render(request, "profiles/batches.html", context)


@login_required
@require_safe
def batch(request: HttpRequest, client_code: str, batch_id: str) -> HttpResponse:
    client, _ = client_for(request.user, client_code, Role.OBSERVER, action=VIEW_BATCHES)
    found = _batch(client, batch_id)
    failures = list(found.failures.order_by("position")[:FAILURES_SHOWN])
    context = {
        "client": client,
        "batch": found,
        "failures": failures,
        "more_failures": found.failed_updates - len(failures),
        "refresh_seconds": 0 if found.is_finished else REFRESH_SECONDS,
    }
    return render(request, "profiles/batch.html", context)


class _Echo:
    def write(self, value: str) -> str:
        return value


def failure_rows(batch: Batch) -> Iterator[str]:
    writer = csv.writer(_Echo())
    position = "index" if batch.api_version == "json" else "line"
    yield writer.writerow([position, "id", "code", "message"])
    failures = BatchFailure.objects.filter(batch=batch).order_by("position")
    for failure in failures.iterator(chunk_size=2000):
        yield writer.writerow(
            [
                failure.position,
                spreadsheet_safe(failure.profile_id),
                failure.code,
                spreadsheet_safe(failure.message),
            ]
        )


@login_required
@require_safe
def failures_csv(request: HttpRequest, client_code: str, batch_id: str) -> StreamingHttpResponse:
    client, _ = client_for(request.user, client_code, Role.OBSERVER, action=VIEW_BATCHES)
    found = _batch(client, batch_id)
    response = StreamingHttpResponse(failure_rows(found), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{found.pk}-failures.csv"'
    return response
