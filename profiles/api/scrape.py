"""``GET /metrics``: the Prometheus text format, for a scraper the operator allowed
(docs/operations.md#metrics).

Off unless configured: with neither ``METRICS_TOKEN`` nor ``METRICS_ALLOWED_NETWORKS`` it
answers 404, as if it did not exist. With allowed networks, a caller from elsewhere
(the caller's address as everywhere: ``TRUSTED_PROXIES``) gets 403; with a token,
``Authorization: Bearer <METRICS_TOKEN>`` is required (401 without it or with another),
compared by its SHA-256 digest in constant time. With both, both apply.

The answer adds up the counts of every process of the installation
(``prometheus_client``'s multiprocess mode, targetadmin/metrics_directory.py) and the facts
read from the database at this moment (``profiles.api.facts``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from profiles.access.addresses import caller_address, configured_networks, within
from profiles.api.facts import DatabaseFacts
from profiles.rules import metrics as instruments

logger = logging.getLogger(__name__)

CHALLENGE = 'Bearer realm="metrics"'


def is_served() -> bool:
    """Whether ``/metrics`` exists at all: only once a token or networks are configured."""
    return bool(settings.METRICS_TOKEN_DIGEST or settings.METRICS_ALLOWED_NETWORKS)


def presents_token(request: HttpRequest) -> bool:
    """Whether the request's Bearer credentials are ``METRICS_TOKEN``."""
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return False
    presented = hashlib.sha256(credentials.strip().encode()).hexdigest()
    return hmac.compare_digest(presented, settings.METRICS_TOKEN_DIGEST)


def refusal(request: HttpRequest) -> HttpResponse | None:
    """The answer to a caller ``/metrics`` is not for, or ``None`` when it may read it."""
    if not is_served():
        return HttpResponse("Not found.\n", status=404, content_type="text/plain")
    address = caller_address(request)
    networks = configured_networks(tuple(settings.METRICS_ALLOWED_NETWORKS))
    if networks and (address is None or not within(address, networks)):
        logger.warning("refused /metrics: address=%s reason=network not allowed", address)
        return HttpResponse("Forbidden.\n", status=403, content_type="text/plain")
    if settings.METRICS_TOKEN_DIGEST and not presents_token(request):
        logger.warning("refused /metrics: address=%s reason=token", address)
        return HttpResponse(
            "The metrics token is required.\n",
            status=401,
            content_type="text/plain",
            headers={"WWW-Authenticate": CHALLENGE},
        )
    return None


def registry() -> CollectorRegistry:
    """Every process's counts and the facts; this process's counts alone where there is
    no metrics directory (``/metrics`` served by Django's test client)."""
    found = CollectorRegistry(auto_describe=True)
    if settings.METRICS_DIR is not None:
        MultiProcessCollector(found, path=str(settings.METRICS_DIR))  # type: ignore[no-untyped-call]
    else:
        for instrument in instruments.INSTRUMENTS:
            found.register(instrument)
    found.register(DatabaseFacts())
    return found


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    refused = refusal(request)
    if refused is not None:
        return refused
    instruments.HELD.move()  # this process's requests; the others move theirs every second
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
