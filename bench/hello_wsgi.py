"""The server's own limit: a raw WSGI application, no Django (``gunicorn bench.hello_wsgi``).

``bench/online.py`` serves it under the product's gunicorn configuration, as it serves the
bare Django view, so each case's ratio to it says how much of the server's capacity is left
to the application (docs/performance.md#online-apis).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

# The bare Django view's body (bench.baseline), so both answers are the same size.
BODY = b'{"client": "bench", "status": "ok"}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", HEADERS)
    return [BODY]
