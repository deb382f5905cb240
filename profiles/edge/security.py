"""The ``Host`` check and the security headers of a profile API answer, read from the WSGI
environ (docs/operations.md#the-api-path).

Both doors of the profile APIs use these: the Django middleware of the API path
(``profiles.api.paths.ApiHeadersMiddleware``), which reads them from ``request.META`` (the
environ itself), and the fast lane (``profiles.api.lane``), which makes no request at all.

- :func:`checked_host` is Django's own ``HttpRequest.get_host``, run over the environ: the
  host the request names (``X-Forwarded-Host`` under ``USE_X_FORWARDED_HOST``, else
  ``Host``, else the server's name and port), checked against ``ALLOWED_HOSTS``;
  ``DisallowedHost`` (answered 400 by Django) when it is not allowed.
- :func:`is_secure` is Django's ``HttpRequest.is_secure``: the WSGI scheme, or the
  ``SECURE_PROXY_SSL_HEADER`` a trusted proxy sets.
- :class:`ApiHeaders` holds, built once from the settings, the headers every API answer
  carries: ``X-Frame-Options``, the Content-Security-Policy (an API answer has no nonce, so
  its policy never changes), and what Django's ``SecurityMiddleware`` adds to a page:
  ``Strict-Transport-Security`` over HTTPS, ``X-Content-Type-Options``,
  ``Referrer-Policy`` and ``Cross-Origin-Opener-Policy``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.utils.csp import CSP, build_policy

type Environ = Mapping[str, Any]
type Headers = tuple[tuple[str, str], ...]


class _Environ(WSGIRequest):
    """Django's own reading of a request's host and scheme (``WSGIRequest``'s methods) over
    the environ alone, without parsing the rest of a request."""

    def __init__(self, environ: Environ) -> None:
        self.environ = self.META = environ  # type: ignore[assignment]


def is_secure(environ: Environ) -> bool:
    """Whether the call came over HTTPS: Django's ``HttpRequest.is_secure``."""
    return _Environ(environ).is_secure()


def checked_host(environ: Environ) -> str:
    """The host the call names, once ``ALLOWED_HOSTS`` allows it: Django's
    ``HttpRequest.get_host``, so ``DisallowedHost`` when it is not allowed."""
    return _Environ(environ).get_host()


class ApiHeaders:
    """The security headers of an API answer, built from the settings when made."""

    def __init__(self) -> None:
        plain: list[tuple[str, str]] = [("X-Frame-Options", str(settings.X_FRAME_OPTIONS).upper())]
        policies: tuple[tuple[str, Mapping[str, Any]], ...] = (
            (CSP.HEADER_ENFORCE, settings.SECURE_CSP),
            (CSP.HEADER_REPORT_ONLY, settings.SECURE_CSP_REPORT_ONLY),
        )
        plain += [(str(header), build_policy(config)) for header, config in policies if config]
        secure = list(plain)
        if settings.SECURE_HSTS_SECONDS:
            hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
            if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
                hsts += "; includeSubDomains"
            if settings.SECURE_HSTS_PRELOAD:
                hsts += "; preload"
            secure.append(("Strict-Transport-Security", hsts))
        common: list[tuple[str, str]] = []
        if settings.SECURE_CONTENT_TYPE_NOSNIFF:
            common.append(("X-Content-Type-Options", "nosniff"))
        policy = settings.SECURE_REFERRER_POLICY
        if policy:
            # A comma-separated string or a list of fallbacks, as Django accepts it.
            parts = (
                [part.strip() for part in policy.split(",")] if isinstance(policy, str) else policy
            )
            common.append(("Referrer-Policy", ",".join(parts)))
        if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
            common.append(
                ("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY)
            )
        self.plain: Headers = (*plain, *common)
        self.secure: Headers = (*secure, *common)
        self.names = frozenset(name.lower() for name, _ in self.secure)

    def of(self, environ: Environ) -> Headers:
        """The headers of an answer to the call ``environ`` describes."""
        return self.secure if is_secure(environ) else self.plain
