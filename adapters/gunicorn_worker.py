"""gunicorn's gthread worker, made safe against slow clients (``gunicorn.conf.py`` uses it).

gunicorn 27's gthread worker waits for clients in three places where a slow client stops
others from being served:

- It gives a connection to one of its threads as soon as the first byte of a request
  arrives; the thread then waits, with no time limit, for the rest of the request head,
  and for each piece of the body the application reads. A dozen clients sending a header
  line every few seconds hold every thread (2 processes of 4 threads under ``make run``)
  and ``/healthz`` stops answering; a client that stops halfway holds a thread for good.
  The worker ``timeout`` does not help: it is a heartbeat of the worker process, which the
  main loop keeps beating while threads wait.
- After answering a request whose body the application did not read (a 401 or a 404 to
  a POST, say), the thread waits up to 5 s for the rest of that body so the connection
  can be kept alive: a client that announces a body and sends none holds it for 5 s.
- It closes a connection that is not kept alive by half-closing it and waiting up to 2 s
  for the client to close its side, in the main loop: each client that never does stops
  the whole process, accepting included, for 2 s.

This worker waits for clients in its event loop instead, as nginx does. A thread is taken
only once a whole request head has arrived, and a connection whose head is not complete
``header_timeout`` seconds after it started (the connection was accepted, or a kept-alive
connection sent the first byte of its next request) is closed. A body the application did
not read is discarded only as far as it has already arrived; otherwise the connection is
closed. Closing waits for the client in the event loop. Waiting connections cost a socket
and a buffer each, not a thread; gunicorn's ``worker_connections`` (1,000 per process)
bounds them. While a thread serves a request, each write of the answer waits at most
``body_timeout`` seconds for the client, and a client that stops reading its answer is
disconnected.

Request bodies keep a pace (:class:`Pace`): each wait for more of a body lasts at most
``body_timeout`` seconds, and past its first ``body_timeout`` seconds the body must have
averaged ``body_min_rate`` bytes a second. How a body is read depends on its size:

- A body with a ``Content-Length`` of up to ``body_buffer_bytes`` (every form, single
  update, management call and JSON bulk request of up to 1 MB) is read here, in the event
  loop, and the request goes to a thread only once it is whole: a sign-in form sent four
  bytes a second holds a socket and its bytes, never a thread. A body that stalls or falls
  behind its pace goes to a thread as it is, and the application's next read of it fails as
  a read that waited too long (``TimeoutError``, an ``OSError``), which each endpoint
  answers 408 in its own envelope.
- A larger body, a chunked one, or one whose client waits for ``100 Continue`` is streamed:
  a thread reads it as it arrives (the batch upload writes it to storage as it goes), and
  each read checks the pace. A process streams at most ``body_streams`` such bodies at once
  (gunicorn.conf.py: half its threads), so that however slowly they arrive other requests
  find a thread.
  Another waits its turn here, unread, for up to ``body_timeout`` seconds, and is then
  answered 503 with ``Retry-After``.

In production nginx in front buffers request bodies (deploy/nginx/targetadmin.conf), so
bodies reach gunicorn whole and at local speed.

Header names with an underscore: gunicorn maps ``X_Forwarded_For`` and ``X-Forwarded-For``
alike to ``HTTP_X_FORWARDED_FOR``, joining their values, once ``header_map = "dangerous"``
lets the legacy ``access_token`` header through (gunicorn.conf.py), and takes a
``SCRIPT_NAME`` header as the WSGI ``SCRIPT_NAME``. So before the WSGI environ is built this
worker drops every header whose name holds an underscore but ``access_token``, and refuses
(400) a request that still carries two names differing only by ``_`` and ``-``
(``access_token`` and ``access-token``): nothing a client writes can speak for a header a
proxy sets.

It serves plain HTTP/1.1 only (TLS and HTTP/2 are the proxy's job), which ``check_config``
enforces. It relies on details of gunicorn's gthread worker, so ``requirements.txt`` pins
gunicorn and ``tests/test_slow_clients.py`` checks the behaviour end to end.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

from gunicorn.http.errors import InvalidHeader
from gunicorn.workers import gthread

# A head ends with an empty line. A bare LF ends it too as far as waiting goes: gunicorn's
# parser refuses a bare LF (400) without waiting for more.
_HEAD_ENDS = (b"\r\n\r\n", b"\n\n")
# Longer than any head gunicorn accepts with this project's settings (100 fields of up to
# 8 KB, and a request line with an 8 KB query string), so a legitimate head always fits.
MAX_HEAD_BYTES = 1024 * 1024
_HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"Connection: close\r\nContent-Length: 0\r\n\r\n"
)
# Closing: how long, and how much of what the client still sends, to read before the
# socket is closed (gunicorn's own values). Closing with unread bytes would reset the
# connection, and the client could lose the end of its answer.
LINGER_SECONDS = 2.0
_LINGER_BYTES = 65536
# The header names with an underscore that reach the application, as gunicorn spells them:
# the legacy token header (docs/api.md#the-legacy-header-and-underscores), read by
# profiles/api/gate.py.
UNDERSCORE_HEADERS_READ = frozenset({"ACCESS_TOKEN"})
# How long a thread waits for the rest of a body the application did not read: long enough
# for bytes already on their way, short enough that no client can hold a thread with it.
_DISCARD_SECONDS = 0.05
# Fair shares of connections. Every worker process waits on the same listening socket and
# whichever wakes first accepts: one process could take all 16 connections of a keep-alive
# client pool while its sibling idles, for as long as the pool lives. A process that already
# holds as many connections as it has threads stops accepting for this long per connection
# over that (at most _MOST_ACCEPT_PAUSE), so a sibling with fewer takes the next one; when
# every process is as full, each still accepts after its pause.
_ACCEPT_PAUSE_PER_CONNECTION = 0.002
_MOST_ACCEPT_PAUSE = 0.02

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Connection: close\r\nRetry-After: 5\r\nContent-Length: 0\r\n\r\n"
)


@dataclass(frozen=True)
class Pace:
    """How slowly a request body may arrive.

    Any one wait for more of it may last ``timeout`` seconds, and after the first
    ``timeout`` seconds it must have averaged ``min_rate`` bytes a second: by ``t`` seconds
    after its head, at least ``min_rate * (t - timeout)`` bytes.
    """

    timeout: float
    min_rate: int

    def too_slow(self, received: int, seconds: float) -> bool:
        return seconds > self.timeout + received / self.min_rate


class Connection(gthread.TConn):  # type: ignore[misc]  # gunicorn has no type hints
    """A connection that carries what was read for it (its request's head, and the body if
    it was waited for) until a thread parses it, and the pace of its request's body."""

    def __init__(self, cfg: Any, sock: socket.socket, client: Any, server: Any, pace: Pace):
        super().__init__(cfg, sock, client, server)
        self.pace = pace
        self.head = bytearray()
        self.lingered = 0
        # When the event loop stops waiting for this connection's client.
        self.deadline = 0.0
        # The head has arrived before any thread sees the connection: gthread's own wait
        # for a first byte (which would hold the thread up to 5 s) is skipped.
        self.data_ready = True
        # The current request's body: when its head was complete (or, streamed, when a
        # thread took it), how many of its bytes have arrived, when the last did, how many
        # ``head`` must hold before a thread takes it, whether it holds one of the worker's
        # streams, and whether the event loop gave up waiting for it.
        self.body_since = self.last_data = 0.0
        self.body_bytes = 0
        self.wait_until = 0
        self.streaming = False
        self.stalled = False

    def start_body(self, arrived: int) -> None:
        self.body_since = self.last_data = time.monotonic()
        self.body_bytes = arrived
        self.stalled = False

    def body_overdue(self, now: float) -> bool:
        return self.stalled or self.pace.too_slow(self.body_bytes, now - self.body_since)

    def init(self) -> None:
        # gthread's handle() calls this in the thread before each request, right after
        # putting the socket in blocking mode (which clears any timeout).
        super().init()
        if self.head:
            self.parser.unreader.unread(bytes(self.head))
            self.head = bytearray()
        self.parser.unreader.sock = PacedReads(self)
        self.sock.settimeout(self.pace.timeout)


class PacedReads:
    """The socket as gunicorn's parser reads a request body from it: each read first checks
    the body's pace, and fails as a read that waited too long (``TimeoutError``) once the
    body is overdue."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def recv(self, size: int) -> bytes:
        conn = self.conn
        if conn.body_overdue(time.monotonic()):
            raise TimeoutError("the request body arrived too slowly")
        data: bytes = conn.sock.recv(size)
        conn.body_bytes += len(data)
        return data

    # gunicorn's parser bounds its wait for the rest of an unread body with these.
    def gettimeout(self) -> float | None:
        timeout: float | None = self.conn.sock.gettimeout()
        return timeout

    def settimeout(self, value: float | None) -> None:
        self.conn.sock.settimeout(value)


class ThreadWorker(gthread.ThreadWorker):  # type: ignore[misc]  # gunicorn has no type hints
    """gthread that waits for slow clients in its event loop, never in a thread."""

    #: Seconds for a whole request head to arrive.
    header_timeout = 10.0
    #: Seconds any one read of a request body (or write of an answer) may wait.
    body_timeout = 30.0
    #: Bytes a second a request body must average after its first ``body_timeout`` seconds.
    body_min_rate = 1000
    #: The largest body with a ``Content-Length`` that arrives whole before a thread takes
    #: its request.
    body_buffer_bytes = 1024 * 1024
    #: Requests whose body is streamed to a thread (larger, chunked, or awaiting a
    #: ``100 Continue``) that threads serve at once.
    body_streams = 2

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pace = Pace(self.body_timeout, self.body_min_rate)
        # Connections the event loop waits on: for the rest of a request head, for a turn
        # to stream a body, and for the client to close. In each, every deadline is the same
        # number of seconds after the moment the connection was appended, so the earliest
        # deadline is always first.
        self.heads_pending: deque[Connection] = deque()
        self.streams_pending: deque[Connection] = deque()
        self.closing: deque[Connection] = deque()
        # Until when this process leaves new connections to its siblings (monotonic clock).
        self.accept_paused_until = 0.0
        # Connections whose request's body the event loop reads before a thread takes it;
        # each is checked against its pace.
        self.bodies_pending: set[Connection] = set()
        self.streams = 0

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        super().check_config(cfg, log)
        # The head is read before TLS, the PROXY protocol or an HTTP/2 preface could be
        # handled, so none of them may be on.
        if (
            cfg.is_ssl
            or cfg.proxy_protocol != "off"
            or cfg.http_protocols != ["h1"]
            or cfg.http2_cleartext != "off"
        ):
            raise RuntimeError(f"{cls.__name__} serves plain HTTP/1.1 only")

    def accept(self, listener: socket.socket) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = Connection(self.cfg, client_sock, client_addr, listener.getsockname(), self.pace)
        self.enqueue_req(conn)
        self._leave_next_connections_to_siblings()

    def _leave_next_connections_to_siblings(self) -> None:
        """Stop accepting for a moment once this process holds its share (see the pause)."""
        over = self.nr_conns - self.cfg.threads + 1
        if over <= 0 or self.cfg.workers < 2:
            return
        pause = min(_ACCEPT_PAUSE_PER_CONNECTION * over, _MOST_ACCEPT_PAUSE)
        self.accept_paused_until = time.monotonic() + pause
        super().set_accept_enabled(False)

    def set_accept_enabled(self, enabled: bool) -> None:
        # gthread's main loop turns accepting back on whenever it has room for connections;
        # a pause holds until it ends.
        if enabled and time.monotonic() < self.accept_paused_until:
            return
        super().set_accept_enabled(enabled)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        # gthread waits up to a second for events; a pause must not last that long.
        paused_for = self.accept_paused_until - time.monotonic()
        if paused_for > 0:
            timeout = min(timeout, paused_for)
        super().wait_for_and_dispatch_events(timeout)

    def enqueue_req(self, conn: Connection) -> None:
        """Read ``conn``'s request head here, then see to its body (:meth:`head_arrived`).

        Every way to a thread goes through this method in gthread: a new connection, a
        kept-alive one that turns readable, and one whose previous request's body was read
        past its end.
        """
        if conn.parser is not None:
            conn.head += conn.parser.unreader.take_buffered()
        if _head_is_complete(conn.head, 0):
            self.head_arrived(conn)
            return
        self._wait(self.heads_pending, conn, self.header_timeout, self.on_head_readable)

    def head_arrived(self, conn: Connection) -> None:
        """Give ``conn`` to a thread once its body is here too, or to stream the body."""
        head_length, body_length = framing(conn.head)
        conn.start_body(len(conn.head) - head_length)
        if body_length is None or body_length > self.body_buffer_bytes:
            self.stream(conn)
        elif len(conn.head) < head_length + body_length:
            conn.wait_until = head_length + body_length
            conn.sock.setblocking(False)
            self.bodies_pending.add(conn)
            self.poller.register(
                conn.sock, selectors.EVENT_READ, partial(self.on_body_readable, conn)
            )
        else:
            super().enqueue_req(conn)

    def on_body_readable(self, conn: Connection, client: socket.socket) -> None:
        data = _receive(conn)
        if data is None:
            return
        conn.head += data
        conn.body_bytes += len(data)
        conn.last_data = time.monotonic()
        if data and len(conn.head) < conn.wait_until:
            return
        # Whole, or the client hung up: the application reads what there is.
        self._stop_reading_body(conn)
        super().enqueue_req(conn)

    def _stop_reading_body(self, conn: Connection) -> None:
        self.poller.unregister(conn.sock)
        self.bodies_pending.discard(conn)

    def stream(self, conn: Connection) -> None:
        """Give ``conn`` to a thread that reads its body as it arrives, once one of the
        worker's ``body_streams`` is free; until then its body waits unread."""
        if self.streams >= self.body_streams:
            conn.deadline = time.monotonic() + self.body_timeout
            self.streams_pending.append(conn)
            return
        self.streams += 1
        conn.streaming = True
        # The body's pace starts now: until this moment it was the worker holding it back.
        conn.start_body(conn.body_bytes)
        super().enqueue_req(conn)

    def on_head_readable(self, conn: Connection, client: socket.socket) -> None:
        data = _receive(conn)
        if data is None:
            return
        searched_from = len(conn.head)
        conn.head += data
        complete = _head_is_complete(conn.head, searched_from)
        if data and not complete and len(conn.head) <= MAX_HEAD_BYTES:
            return
        self._stop_waiting(self.heads_pending, conn)
        if complete:
            self.head_arrived(conn)
        elif data:
            with contextlib.suppress(OSError):
                conn.sock.send(_HEAD_TOO_LARGE)
            self.close_lingering(conn)
        else:
            # The client hung up before its head was complete.
            self._drop(conn)

    def handle_request(self, req: Any, conn: Connection) -> bool:
        req.headers = headers_read(req)
        try:
            return bool(super().handle_request(req, conn))
        except TimeoutError:
            # The client stopped reading its answer (gthread would log this as an error
            # with a traceback; it is the client's doing, like a reset connection).
            self.log.debug("Closing a connection whose client stopped reading its answer")
            return False

    def _keepalive_after(self, conn: Connection, keepalive: bool) -> bool:
        # gthread waits here, in the thread, up to 5 s for the rest of a body the
        # application did not read.
        if not keepalive:
            return False
        return bool(conn.parser.finish_body(deadline=time.monotonic() + _DISCARD_SECONDS))

    def finish_request(self, conn: Connection, fs: Future[Any]) -> None:
        if conn.streaming:
            conn.streaming = False
            self.streams -= 1
            if self.streams_pending:
                self.stream(self.streams_pending.popleft())
        if fs.cancelled() or fs.exception() is not None or fs.result():
            super().finish_request(conn, fs)
        else:
            # Not kept alive. gthread would wait for the client to close in this loop.
            self.close_lingering(conn)

    def close_lingering(self, conn: Connection) -> None:
        """Half-close ``conn``, then close it once the client has, in the event loop."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._drop(conn)
            return
        conn.lingered = 0
        self._wait(self.closing, conn, LINGER_SECONDS, self.on_closing_readable)

    def on_closing_readable(self, conn: Connection, client: socket.socket) -> None:
        data = _receive(conn)
        if data is None:
            return
        conn.lingered += len(data)
        if data and conn.lingered < _LINGER_BYTES:
            return
        self._stop_waiting(self.closing, conn)
        self._drop(conn)

    def murder_pending(self) -> None:
        """Also end the waits of the event loop that have lasted long enough.

        A head that is not complete in time, and a client that does not close, are closed.
        A body that stalls or falls behind its pace goes to a thread as it is: the
        application's next read of it fails as a read that waited too long would, and it
        answers in its own way (408). A body still waiting for a turn to stream is answered
        503. gthread calls this at least once a second, in its main loop and while it stops.
        """
        super().murder_pending()
        now = time.monotonic()
        for waiting in (self.heads_pending, self.closing):
            while waiting and waiting[0].deadline <= now:
                conn = waiting.popleft()
                with contextlib.suppress(OSError, KeyError, ValueError):
                    self.poller.unregister(conn.sock)
                self._drop(conn)
        overdue = [
            conn
            for conn in self.bodies_pending
            if conn.body_overdue(now) or now - conn.last_data > self.body_timeout
        ]
        for conn in overdue:
            self._stop_reading_body(conn)
            conn.stalled = True
            super().enqueue_req(conn)
        while self.streams_pending and self.streams_pending[0].deadline <= now:
            conn = self.streams_pending.popleft()
            with contextlib.suppress(OSError):
                conn.sock.send(_BUSY)
            self.close_lingering(conn)

    def _wait(
        self,
        waiting: deque[Connection],
        conn: Connection,
        seconds: float,
        on_readable: Callable[[Connection, socket.socket], None],
    ) -> None:
        conn.deadline = time.monotonic() + seconds
        conn.sock.setblocking(False)
        waiting.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(on_readable, conn))

    def _stop_waiting(self, waiting: deque[Connection], conn: Connection) -> None:
        self.poller.unregister(conn.sock)
        waiting.remove(conn)

    def _drop(self, conn: Connection) -> None:
        self.nr_conns -= 1
        conn.close()


def _receive(conn: Connection) -> bytes | None:
    """What a readable socket holds: ``b""`` once the client has closed or reset it, and
    ``None`` when there was nothing after all."""
    try:
        data: bytes = conn.sock.recv(65536)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""
    return data


def _head_is_complete(head: bytearray, searched_from: int) -> bool:
    """Whether ``head`` holds a whole request head; bytes before ``searched_from`` held none."""
    start = max(0, searched_from - 3)
    return any(head.find(end, start) >= 0 for end in _HEAD_ENDS)


def headers_read(req: Any) -> list[tuple[str, str]]:
    """``req``'s headers without those whose name holds an underscore, but for
    :data:`UNDERSCORE_HEADERS_READ`; ``InvalidHeader`` (gunicorn answers 400) when two names
    left differ only by ``_`` and ``-``, as both would be one variable of the environ."""
    kept = [
        (name, value)
        for name, value in req.headers
        if "_" not in name or name in UNDERSCORE_HEADERS_READ
    ]
    spellings: dict[str, str] = {}
    for name, _ in kept:
        if spellings.setdefault(name.replace("_", "-"), name) != name:
            raise InvalidHeader(name, req=req)
    return kept


class Framing(NamedTuple):
    """Where a request's head ends, and how long its body is: ``None`` when that is not known
    before it arrives (chunked) or the client waits for a ``100 Continue`` before sending it."""

    head_length: int
    body_length: int | None


def framing(data: bytearray) -> Framing:
    """The framing of the request whose whole head starts ``data``, as far as waiting for
    its body goes; gunicorn's parser decides what the request is."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return Framing(len(data), 0)  # a head ending in bare LFs: gunicorn refuses it (400)
    lengths = set()
    for line in bytes(data[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"transfer-encoding" or (name == b"expect" and value == b"100-continue"):
            return Framing(end + 4, None)
        if name == b"content-length":
            lengths.add(value)
    if len(lengths) != 1:
        return Framing(end + 4, 0)  # none, or several: gunicorn refuses those (400)
    (length,) = lengths
    if not length.isdigit():
        return Framing(end + 4, 0)
    # Longer than any buffer (and than int() reads): streamed, for the application to refuse.
    return Framing(end + 4, int(length) if len(length) <= 15 else None)
