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
  its policy never changes), and what Django's ``SecurityMiddleware`` adds to a page
  (``Strict-Transport-Security`` over HTTPS, ``X-Content-Type-Options``,
  ``Referrer-Policy``, ``Cross-Origin-Opener-Policy``), asked of that middleware itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpResponse
from django.middleware.security import SecurityMiddleware
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


def _django_security_headers(secure: bool) -> list[tuple[str, str]]:
    """What Django's ``SecurityMiddleware`` adds to an answer, over HTTPS or not."""
    response = HttpResponse()
    del response["Content-Type"]
    scheme = _Environ({"wsgi.url_scheme": "https" if secure else "http"})
    SecurityMiddleware(lambda request: response).process_response(scheme, response)
    return list(response.items())


class ApiHeaders:
    """The security headers of an API answer, built from the settings when made."""

    def __init__(self) -> None:
        headers = [("X-Frame-Options", str(settings.X_FRAME_OPTIONS).upper())]
        policies: tuple[tuple[str, Mapping[str, Any]], ...] = (
            (CSP.HEADER_ENFORCE, settings.SECURE_CSP),
            (CSP.HEADER_REPORT_ONLY, settings.SECURE_CSP_REPORT_ONLY),
        )
        headers += [(str(header), build_policy(config)) for header, config in policies if config]
        self.plain: Headers = (*headers, *_django_security_headers(secure=False))
        self.secure: Headers = (*headers, *_django_security_headers(secure=True))

    def of(self, environ: Environ) -> Headers:
        """The headers of an answer to the call ``environ`` describes."""
        return self.secure if is_secure(environ) else self.plain
