"""The baseline of the online benchmark: the least a Django view can do."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

BASELINE_PATH = "/bench/baseline"


def baseline(request: HttpRequest) -> HttpResponse:
    """A small JSON body with no database work: the framework's own limit."""
    return JsonResponse({"client": "bench", "status": "ok"})
