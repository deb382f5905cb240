"""Make profile API calls from several threads of one process, through the application
gunicorn serves (``targetadmin.wsgi``: the fast lane in front of Django), then stop as a
gunicorn worker does, and report how the process wrote its token usage.

    python -m tests.token_usage_probe < PLAN

``PLAN`` is a JSON object: ``calls``, a list of ``[path, token, address]`` made with GET,
``threads``, and ``start_at``, the wall-clock time (seconds since the epoch) at which every
probe starts calling, so that the processes call at once. The database is the one the
environment names (``DATABASE_URL``), already migrated and filled. The probe prints one JSON
object: the answers' statuses and how many of each, the seconds the calls took, and each
statement that wrote token usage: ``[seconds since the calls started, client id, integration
id, whether the worker was stopping]``.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any


def main(plan: dict[str, Any]) -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "targetadmin.settings")
    import django

    django.setup()
    from django.db import connections
    from django.db.backends.signals import connection_created

    from profiles.tokens import tally
    from targetadmin.wsgi import application

    writes: list[list[object]] = []
    stopping = threading.Event()
    started = time.monotonic()

    def watch(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.startswith("INSERT INTO profiles_tokenusage"):
            moment = round(time.monotonic() - started, 3)
            writes.append([moment, params[0], params[1], stopping.is_set()])
        return execute(sql, params, many, context)

    def watched(sender: object, connection: Any, **kwargs: object) -> None:
        connection.execute_wrappers.append(watch)

    connection_created.connect(watched)
    calls = plan["calls"]
    threads = plan["threads"]
    statuses: Counter[str] = Counter()
    lock = threading.Lock()

    def call(path: str, token: str, address: str) -> str:
        query = path.partition("?")[2]
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path.partition("?")[0],
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Bearer {token}",
            "REMOTE_ADDR": address,
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }
        answered: list[str] = []

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            answered.append(status.split()[0])

        b"".join(application(environ, start_response))
        return answered[0]

    def run(first: int) -> None:
        mine: Counter[str] = Counter()
        try:
            for path, token, address in calls[first::threads]:
                mine[call(path, token, address)] += 1
        finally:
            connections.close_all()
            with lock:
                statuses.update(mine)

    time.sleep(max(0.0, plan["start_at"] - time.time()))
    started = time.monotonic()
    workers = [threading.Thread(target=run, args=(first,)) for first in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.monotonic() - started
    # What gunicorn's worker_exit hook (gunicorn.conf.py) does as the worker stops.
    stopping.set()
    tally.COUNTS.write_all()
    return {"statuses": dict(statuses), "seconds": seconds, "writes": writes}


if __name__ == "__main__":
    print(json.dumps(main(json.load(sys.stdin))))
