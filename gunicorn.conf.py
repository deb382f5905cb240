"""gunicorn settings, read when gunicorn starts in this directory (``make run`` names it).

``gunicorn -c gunicorn.conf.py targetadmin.wsgi``; the sizes can be overridden from the
environment (see .env.example), read by the settings' own readers (targetadmin/environment.py),
so a value they cannot read stops gunicorn with a message naming the variable. The header
and request-line settings follow from the profile APIs' contract (docs/api.md#authentication,
docs/api.md#single-profile-update).
"""

from __future__ import annotations

import os
from typing import Any

from adapters.gunicorn_logging import Logger
from adapters.gunicorn_worker import ThreadWorker
from targetadmin import metrics_directory
from targetadmin.environment import env_float, env_int, env_str, json_logging, var_dir

# Before anything imports prometheus_client: the workers inherit it (docs/operations.md#metrics).
_metrics_dir = metrics_directory.prepare()

_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

bind = env_str("BIND", "127.0.0.1:8000")
# Requests mostly wait on the database, so two processes per core keep the cores busy;
# threads let a worker go on serving while one of its requests streams a slow upload.
workers = env_int("WEB_CONCURRENCY", 2 * _cores + 1, minimum=1)
threads = env_int("GUNICORN_THREADS", 4, minimum=1)


class Worker(ThreadWorker):
    """gthread that waits for slow clients in its event loop and bounds every read.

    gunicorn's own gthread lets a client that trickles its headers or its body, or stops
    sending it, hold a thread for good, and a dozen such clients stop the server answering
    (adapters/gunicorn_worker.py says where else it waits, and how this worker differs).
    """

    # A head is a few KB: even a slow link sends it in well under a second, so 10 s is
    # generous for real clients and short for one that trickles header lines.
    header_timeout = env_float("GUNICORN_HEADER_TIMEOUT", 10, minimum=1)
    # Seconds a read of the body (or a write of the answer) may wait for the client. A
    # slow link still sends something every second; a client that stops is answered 408
    # by the batch upload, and disconnected.
    body_timeout = env_float("GUNICORN_BODY_TIMEOUT", 30, minimum=1)
    # Past its first body_timeout seconds a body must have averaged this many bytes a
    # second, or it is answered 408: a trickle of a few bytes a second cannot hold on for
    # hours. 1 KB/s is far below any real link.
    body_min_rate = env_int("GUNICORN_BODY_MIN_RATE", 1000, minimum=1)
    # A body with a Content-Length up to this arrives whole, in the event loop, before a
    # thread takes its request: every page's form, single update, JSON bulk request of up to
    # 1 MB and management call, and small batch files. It costs that much memory per
    # connection at most, and no thread.
    body_buffer_bytes = env_int("GUNICORN_BODY_BUFFER_BYTES", 1024 * 1024)
    # Larger bodies (and chunked ones) stream to the application as they arrive, which
    # holds a thread: at most this many at once per process, so that whatever uploads are
    # under way other requests find a thread. Another waits its turn, unread, for up to
    # body_timeout seconds, then is answered 503.
    body_streams = env_int(
        "GUNICORN_BODY_STREAMS", max(1, threads // 2), minimum=1, maximum=threads
    )


worker_class = Worker
# Seconds a worker process may go without beating its heartbeat before gunicorn restarts
# it. Its main loop beats it while threads serve requests, so this ends a stuck process,
# never a slow request or upload: those are bounded by the header and body timeouts above.
timeout = env_int("GUNICORN_TIMEOUT", 300)
graceful_timeout = 30
# gunicorn's control socket (``gunicornc -s var/gunicorn.ctl``: workers, stats, reloads) lives
# in this installation's TARGETADMIN_VAR_DIR, with the rest of its local state. gunicorn's
# default is one path per user, which every gunicorn that user starts on the host takes over
# and the first one to stop removes.
control_socket = str(var_dir() / "gunicorn.ctl")
# Longer than a load balancer's idle timeout would cut connections under it; shorter keeps
# threads free. 5 s suits the usual 60 s balancers as well as direct clients.
keepalive = 5
# Recycle workers now and then so no slow leak grows for weeks. A new worker imports the
# application again (about a second of CPU): every 5,000 requests, a worker busy with single
# updates spent a tenth or more of a core on it.
max_requests = 100_000
max_requests_jitter = 10_000

# The legacy `access_token: <token>` header has an underscore in its name. gunicorn drops
# such headers unless `header_map` is "dangerous", which would also join `X_Forwarded_For`
# into X-Forwarded-For: so the worker drops every other header whose name holds an
# underscore before the application sees any (adapters/gunicorn_worker.py).
header_map = "dangerous"
# gunicorn believes no forwarding header, from any peer. By default it takes the scheme
# (X-Forwarded-Proto and its kin) and SCRIPT_NAME and PATH_INFO from 127.0.0.1, where nginx
# passes on what clients send. The application reads the caller's address and scheme
# itself, each by one setting (TRUSTED_PROXIES, TRUST_X_FORWARDED_PROTO).
secure_scheme_headers: dict[str, str] = {}
forwarder_headers = ""

# A single update may carry an 8 KB query string (the application answers 413 past it);
# gunicorn's default 4094-byte request line, and its 8190 maximum, would refuse it first.
# 0 lifts gunicorn's limit; the worker refuses (431) a request head over 1 MB instead.
limit_request_line = 0

# The application writes one JSON line per request itself (profiles/edge/request_log.py), with
# request id and client code and without the query string, so gunicorn's access log is off.
# Turned on (GUNICORN_ACCESS_LOG=-), its lines leave out the query string and every request
# header but the request id: the URL path, method, status, size and duration only.
accesslog = env_str("GUNICORN_ACCESS_LOG", "") or None


logger_class = Logger
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms %({x-request-id}o)s'
errorlog = "-"
logconfig_dict = json_logging(
    {
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # gunicorn writes access lines whenever logconfig_dict is set, whatever `accesslog`
        # says, to the handlers named here: so the access logger has one only when the
        # access log is on. On, its lines go to stderr as JSON, like every other line
        # (any value of GUNICORN_ACCESS_LOG turns it on; a file name is not used).
        "gunicorn.access": {
            "handlers": ["console"] if accesslog else [],
            "level": "INFO",
            "propagate": False,
        },
    }
)


def on_starting(server: Any) -> None:
    """Before binding or forking: refuse to start when the start-up check reports an error
    (targetadmin/startup.py; docs/operations.md#start-up-and-processes). gunicorn prints the
    message and exits with status 1."""
    if getattr(server.app, "app_uri", None) != "targetadmin.wsgi":
        return  # another application under this configuration (the benchmark's baseline)
    if _metrics_dir is not None:
        # What processes of an earlier run left (a task worker running now keeps its own).
        metrics_directory.clear_dead_processes(_metrics_dir)
    from targetadmin import startup

    why = startup.refusal(server.log.warning)
    if why is not None:
        raise RuntimeError(f"targetadmin cannot start: {why}")


def child_exit(server: Any, worker: Any) -> None:
    """A worker process exited: its counts stay in the sum, its live gauges go
    (docs/operations.md#metrics)."""
    if _metrics_dir is not None:
        metrics_directory.mark_dead(worker.pid)


def post_worker_init(worker: Any) -> None:
    """Each worker writes its token usage counts at most once a minute per token, from a
    thread of its own (profiles/tokens/tally.py, docs/tokens.md#usage)."""
    if getattr(worker.app, "app_uri", None) != "targetadmin.wsgi":
        return
    from profiles.tokens import tally

    tally.start_writer()


def worker_exit(server: Any, worker: Any) -> None:
    """A worker stopping in good order writes the usage counts it still holds."""
    if getattr(worker.app, "app_uri", None) != "targetadmin.wsgi":
        return
    from profiles.tokens import tally

    tally.COUNTS.write_all()
