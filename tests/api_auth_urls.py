"""A URL configuration with views that exercise ``profile_api`` the way future endpoints will."""

from __future__ import annotations

import json

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from profiles.api.envelopes import json_api_error
from profiles.api.gate import profile_api
from profiles.models import Client
from profiles.rules.errors import ErrorCode, ProductError
from profiles.tokens.permissions import Permission


@profile_api(json_api_error, needs=Permission.BATCH, methods=("POST",))
def bulk(request: HttpRequest, client: Client) -> HttpResponse:
    document = json.loads(request.body)
    if "profiles" not in document:
        raise ProductError(ErrorCode.INVALID, "profiles is required")
    return JsonResponse({"client": client.code, "count": len(document["profiles"])})


@profile_api(json_api_error, needs=Permission.BATCH, methods=("POST",))
def form(request: HttpRequest, client: Client) -> HttpResponse:
    return JsonResponse({"fields": len(request.POST)})


@profile_api(json_api_error, needs=Permission.BATCH)
def missing(request: HttpRequest, client: Client) -> HttpResponse:
    raise Http404("no such batch")


urlpatterns = [
    path("api/v1/clients/<str:client>/profiles/bulk", bulk),
    path("api/v1/clients/<str:client>/form", form),
    path("api/v1/clients/<str:client>/missing", missing),
]
