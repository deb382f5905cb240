"""``/healthz`` for load balancers and orchestrators: 200 only while the database answers.

The answer also says how many tasks wait for a worker (django-tasks-db's ready tasks), so a
queue that keeps growing shows that more workers are needed.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_tasks_db.models import DBTaskResult

logger = logging.getLogger(__name__)


def queue_depth() -> int | None:
    """Tasks ready for a worker, or ``None`` when the database does not answer."""
    try:
        return DBTaskResult.objects.ready().count()
    except DatabaseError:
        logger.warning("health check: the database does not answer", exc_info=True)
        # A broken connection is not reused by the next request.
        connection.close_if_unusable_or_obsolete()
        return None


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    depth = queue_depth()
    if depth is None:
        return JsonResponse({"database": "unavailable"}, status=503)
    return JsonResponse({"database": "ok", "queueDepth": depth})
