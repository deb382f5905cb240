"""WSGI entry point: ``gunicorn targetadmin.wsgi``.

Django's handler behind the profile APIs' fast lane (profiles/api/lane.py,
docs/operations.md#the-api-path), which serves the single update and the fetches itself.
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "targetadmin.settings")

django_application = get_wsgi_application()

from profiles.api.lane import FastLane  # noqa: E402 (needs Django set up, as above)

application = FastLane(django_application)
