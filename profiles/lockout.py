"""The answer to a locked-out sign-in (django-axes' ``AXES_LOCKOUT_CALLABLE``).

The management API has already answered in Adobe's error shape (429 with ``Retry-After``),
so that answer is kept; anything else, such as the login form, gets axes' message.
"""

from __future__ import annotations

from typing import Any

from axes.helpers import get_lockout_message
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None,
    credentials: dict[str, Any] | None,
) -> HttpResponse:
    match = request.resolver_match
    if original_response is not None and match is not None and match.app_name == "admin_api":
        return original_response
    status = settings.AXES_HTTP_RESPONSE_CODE
    template = getattr(settings, "AXES_LOCKOUT_TEMPLATE", None)
    if template:
        return render(request, template, status=status)
    return HttpResponse(get_lockout_message(), status=status, content_type="text/plain")
