"""The ``Host`` check and the security headers of a profile API answer, read from the WSGI
environ (docs/operations.md#the-api-path).

Both doors of the profile APIs use these: the Django middleware of the API path
(``profiles.api.paths.ApiHeadersMiddleware``), which reads them from ``request.META`` (the
environ itself), and the fast lane (``profiles.api.lane``), which makes no request at all.

- :func:`checked_host` is Django's own ``HttpRequest.get_host``: the host the request
  names (``X-Forwarded-Host`` under ``USE_X_FORWARDED_HOST``, else ``Host``, else the
  server's name and port), checked against ``ALLOWED_HOSTS`` with Django's
  ``validate_host``; ``DisallowedHost`` (answered 400 by Django) when it is not allowed.
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
from django.core.exceptions import DisallowedHost
from django.http.request import split_domain_port, validate_host
from django.utils.csp import CSP, build_policy

type Environ = Mapping[str, Any]
type Headers = tuple[tuple[str, str], ...]


def is_secure(environ: Environ) -> bool:
    """Whether the call came over HTTPS, as Django's ``HttpRequest.is_secure`` decides."""
    if settings.SECURE_PROXY_SSL_HEADER:
        header, secure_value = settings.SECURE_PROXY_SSL_HEADER
        value = environ.get(header)
        if value is not None:
            return bool(value.split(",", 1)[0].strip() == secure_value)
    return bool(environ.get("wsgi.url_scheme") == "https")


def _raw_host(environ: Environ) -> str:
    if settings.USE_X_FORWARDED_HOST and "HTTP_X_FORWARDED_HOST" in environ:
        return str(environ["HTTP_X_FORWARDED_HOST"])
    if "HTTP_HOST" in environ:
        return str(environ["HTTP_HOST"])
    # PEP 3333's reconstruction, as Django does it.
    host = str(environ["SERVER_NAME"])
    if settings.USE_X_FORWARDED_PORT and "HTTP_X_FORWARDED_PORT" in environ:
        port = str(environ["HTTP_X_FORWARDED_PORT"])
    else:
        port = str(environ["SERVER_PORT"])
    return host if port == ("443" if is_secure(environ) else "80") else f"{host}:{port}"


def checked_host(environ: Environ) -> str:
    """The host the call names, once ``ALLOWED_HOSTS`` allows it; else ``DisallowedHost``."""
    host = _raw_host(environ)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    domain, _ = split_domain_port(host)
    if domain and validate_host(domain, allowed):
        return host
    message = f"Invalid HTTP_HOST header: {host!r}."
    if domain:
        message += f" You may need to add {domain!r} to ALLOWED_HOSTS."
    else:
        message += " The domain name provided is not valid according to RFC 1034/1035."
    raise DisallowedHost(message)


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
