"""``/healthz`` for load balancers and orchestrators: 200 only while the database answers."""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        logger.warning("health check: the database does not answer", exc_info=True)
        # A broken connection is not reused by the next request.
        connection.close_if_unusable_or_obsolete()
        return False
    return True


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    if not database_answers():
        return JsonResponse({"database": "unavailable"}, status=503)
    return JsonResponse({"database": "ok"})
