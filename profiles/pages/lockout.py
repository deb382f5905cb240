"""The answer to a locked-out sign-in (django-axes' ``AXES_LOCKOUT_CALLABLE``).

The management API has already answered in Adobe's error shape (429 with ``Retry-After``),
so that answer is kept; the sign-in pages get a page saying how long the lock lasts.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from profiles.access.lockout import cool_off_seconds


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None,
    credentials: dict[str, Any] | None,
) -> HttpResponse:
    match = request.resolver_match
    if original_response is not None and match is not None and match.app_name == "admin_api":
        return original_response
    seconds = cool_off_seconds(request)
    response = render(
        request, "registration/locked_out.html", {"minutes": max(seconds // 60, 1)}, status=429
    )
    response["Retry-After"] = str(seconds)
    return response
