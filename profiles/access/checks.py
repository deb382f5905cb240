"""The deploy check of single sign-on (docs/operations.md#switching-passwords-off): with
``DEBUG`` off, an issuer that is not HTTPS is a warning of ``manage.py check --deploy``, as
the provider's keys and tokens would travel unprotected."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core import checks

PLAIN_HTTP_ISSUER = "profiles.W002"


def issuer_over_https(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    issuer: str = settings.OIDC_ISSUER
    if settings.DEBUG or not issuer or issuer.startswith("https://"):
        return []
    return [
        checks.Warning(
            f"Single sign-on is configured with an issuer that is not HTTPS ({issuer}).",
            hint="Set OIDC_ISSUER to the provider's https:// issuer URL.",
            id=PLAIN_HTTP_ISSUER,
        )
    ]
