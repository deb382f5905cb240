"""Where a request comes from: the one place the caller's address is read."""

from __future__ import annotations

from django.http import HttpRequest


def caller_address(request: HttpRequest) -> str | None:
    """The peer address of the request, as the server saw it; ``None`` when it has none."""
    return request.META.get("REMOTE_ADDR") or None
