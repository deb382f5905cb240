"""The project's ``handler500``: a busy database gets a page that says to retry."""

from __future__ import annotations

import sys

from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.views import defaults

from profiles.rules import metrics
from profiles.rules.faults import BUSY_MESSAGE, BUSY_RETRY_AFTER_SECONDS, is_database_busy


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: the busy page for a busy database, Django's 500 page otherwise."""
    error = sys.exc_info()[1]
    if error is None or not is_database_busy(error):
        return defaults.server_error(request)
    metrics.count_fault(metrics.Fault.BUSY)
    # Rendered without the request, like Django's own error pages: nothing here may need
    # the database that just refused.
    page = loader.render_to_string("503.html", {"message": BUSY_MESSAGE})
    return HttpResponse(page, status=503, headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)})
