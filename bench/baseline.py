"""The online benchmark's baseline: a bare Django project with one ``JsonResponse`` view.

Settings, URLconf and view in one module (``DJANGO_SETTINGS_MODULE=bench.baseline``,
served by ``bench.baseline_wsgi``): no installed apps, no middleware, no database, no
templates. ``bench/online.py`` serves it with the product's own gunicorn configuration
(``gunicorn.conf.py``, the worker processes and threads ``make run`` starts), so its
requests per second are the most a Django view can answer on the machine at hand, and each
profile API's ratio to it says what the product adds.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

BASELINE_PATH = "/bench/baseline"

SECRET_KEY = "bench-baseline-not-secret"  # noqa: S105 - signs nothing: no sessions, no forms
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "bench.baseline"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict[str, object] = {}
USE_TZ = True


def baseline(request: HttpRequest) -> HttpResponse:
    """A small JSON body with no database work: the framework's own limit."""
    return JsonResponse({"client": "bench", "status": "ok"})


urlpatterns = [path(BASELINE_PATH.removeprefix("/"), baseline)]
