"""Slow clients under gunicorn.conf.py (``make run``): they time out, and never starve others.

The server runs as ``make run`` runs it (2 processes of 4 threads), with the header and body
timeouts shortened to 2 s so the suite stays fast (GUNICORN_HEADER_TIMEOUT and
GUNICORN_BODY_TIMEOUT; the defaults are 10 s and 30 s), and a body's minimum rate lowered to
10 bytes a second (GUNICORN_BODY_MIN_RATE; the default is 1,000) so that a slow link can be
played in a few seconds.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from adapters.gunicorn_worker import MAX_HEAD_BYTES
from tests.gunicorn_server import Server, add_demo_client, gunicorn, in_shell
from tests.slow_clients import (
    HEAD,
    HEALTHZ_SECONDS,
    attackers,
    healthz_seconds,
    healthz_seconds_under_attack,
    trickle_a_large_upload,
    trickle_a_sign_in,
    trickle_header_lines,
    wait_for_the_server_to_close,
)

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0
MIN_RATE = 10
# gunicorn's main loop looks for expired connections once a second; a busy machine adds more.
SLACK = 3.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    var_dir = tmp_path_factory.mktemp("slow-clients")
    with gunicorn(
        var_dir,
        WEB_CONCURRENCY="2",
        GUNICORN_THREADS="4",
        GUNICORN_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
        GUNICORN_BODY_TIMEOUT=str(BODY_TIMEOUT),
        GUNICORN_BODY_MIN_RATE=str(MIN_RATE),
    ) as running:
        add_demo_client(var_dir)
        yield running


ACME = """
from profiles.models import Client
from tests.profile_api import PC_ID, a_profile, issue_token, require_authentication

acme = Client.objects.create(code="acme", name="Acme")
require_authentication(acme)
a_profile(acme, city="Lyon")
print(issue_token(acme))
print(PC_ID)
"""


@pytest.fixture(scope="module")
def acme(server: Server) -> tuple[str, str]:
    """The client acme, which requires its token: (the token, a profile's pcId)."""
    var_dir = server.log_path.parent
    token, pc_id = in_shell(var_dir, ACME).split()[-2:]
    return token, pc_id


def read_response(connection: socket.socket) -> bytes:
    """One whole response with a Content-Length, leaving the connection open."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += connection.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


def until_closed(connection: socket.socket, limit: float = 10) -> tuple[float, bytes]:
    """Seconds until the server closes ``connection`` (``limit`` if it does not), and what
    it sent before."""
    started = time.monotonic()
    connection.settimeout(limit)
    answer = b""
    try:
        while chunk := connection.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        return limit, answer
    return time.monotonic() - started, answer


def announce_a_body_and_send_none(connection: socket.socket, stopped: threading.Event) -> None:
    connection.sendall(
        b"POST /no-such-page HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n"
    )
    wait_for_the_server_to_close(connection, stopped)


def never_close_after_the_answer(connection: socket.socket, stopped: threading.Event) -> None:
    # HTTP/1.0: the server answers, then closes; this client never closes its side.
    connection.sendall(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    wait_for_the_server_to_close(connection, stopped)
    stopped.wait(3)


# Each with twice as many attackers as the server has threads (2 processes of 4).


def test_clients_trickling_header_lines_do_not_stop_healthz(server: Server) -> None:
    with attackers(server.port, 16, trickle_header_lines):
        seconds = healthz_seconds_under_attack(server.url("/healthz"))
    assert max(seconds) < HEALTHZ_SECONDS, seconds


def test_clients_announcing_a_body_they_never_send_do_not_stop_healthz(server: Server) -> None:
    with attackers(server.port, 16, announce_a_body_and_send_none):
        seconds = healthz_seconds_under_attack(server.url("/healthz"))
    assert max(seconds) < HEALTHZ_SECONDS, seconds


def test_clients_that_never_close_after_their_answer_do_not_stop_healthz(server: Server) -> None:
    with attackers(server.port, 16, never_close_after_the_answer):
        seconds = healthz_seconds_under_attack(server.url("/healthz"))
    assert max(seconds) < HEALTHZ_SECONDS, seconds


def test_a_request_head_that_stops_halfway_is_closed_after_the_header_timeout(
    server: Server,
) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(HEAD)
        seconds, answer = until_closed(connection)
    assert answer == b""
    assert HEADER_TIMEOUT - 0.1 < seconds < HEADER_TIMEOUT + SLACK


def test_a_request_head_that_keeps_trickling_is_closed_after_the_header_timeout(
    server: Server,
) -> None:
    # A new line every 0.5 s: never silent long, yet the head never ends.
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(HEAD)
        started = time.monotonic()
        try:
            for line in range(20):
                time.sleep(0.5)
                connection.sendall(b"X-Slow-%d: y\r\n" % line)
        except OSError:
            pass
        seconds = time.monotonic() - started
    assert HEADER_TIMEOUT - 0.1 < seconds < HEADER_TIMEOUT + SLACK


def test_the_header_timeout_also_applies_to_the_next_request_on_a_kept_alive_connection(
    server: Server,
) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(HEAD + b"\r\n")
        assert read_response(connection).startswith(b"HTTP/1.1 200 OK\r\n")
        connection.sendall(HEAD)
        seconds, answer = until_closed(connection)
    assert answer == b""
    assert HEADER_TIMEOUT - 0.1 < seconds < HEADER_TIMEOUT + SLACK


def test_a_request_head_sent_in_pieces_within_the_header_timeout_is_served(
    server: Server,
) -> None:
    query = "q=" + "x" * 8_000  # a single update's query string may be 8 KB
    head = f"GET /healthz?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\naccess_token: t\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        for start in range(0, len(head), 2_000):
            connection.sendall(head[start : start + 2_000].encode())
            time.sleep(0.2)
        assert read_response(connection).startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_request_head_over_a_megabyte_is_refused_431(server: Server) -> None:
    # Exactly one byte too many, all of which the server reads before it answers: a close
    # with bytes still unread would reset the connection and lose the answer.
    head = HEAD + b"X-Large: "
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(head + b"x" * (MAX_HEAD_BYTES + 1 - len(head)))
        seconds, answer = until_closed(connection)
    assert answer.startswith(b"HTTP/1.1 431 "), answer
    assert seconds < 1.0


def test_an_upload_that_stops_short_of_its_content_length_is_answered_408_after_the_body_timeout(
    server: Server,
) -> None:
    body = b"batch=pcId,a\np10,x,y\n"  # 21 bytes of the 1,000 announced
    assert len(body) == 21
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(
            b"POST /m2/demo/v2/profile/batchUpdate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 1000\r\n\r\n" + body
        )
        seconds, answer = until_closed(connection)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"The request body arrived too slowly" in answer
    assert BODY_TIMEOUT - 0.1 < seconds < BODY_TIMEOUT + SLACK


def test_an_upload_that_keeps_arriving_is_not_cut_off_by_the_body_timeout(server: Server) -> None:
    # The body timeout bounds each wait for more of the body, not the whole upload: a
    # slow link that keeps sending (here 12 bytes a second, above the minimum rate) takes
    # as long as it needs.
    body = b"batch=pcId,a\n" + b"".join(b"p%d,x\n" % row for row in range(6))
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(
            b"POST /m2/demo/v2/profile/batchUpdate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        )
        started = time.monotonic()
        for start in range(0, len(body), 8):
            connection.sendall(body[start : start + 8])
            time.sleep(BODY_TIMEOUT / 3)
        assert time.monotonic() - started > BODY_TIMEOUT
        _, answer = until_closed(connection)
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert b"<success>true</success>" in answer


@pytest.mark.parametrize(
    ("path", "content_type", "envelope"),
    [
        ("/api/v1/clients/demo/profiles/bulk", "application/json", b'"code": "request_timeout"'),
        ("/m2/demo/profile/update", "application/json", b"<success>false</success>"),
        ("/m2/demo/v2/profile/batchUpdate", "multipart/form-data; boundary=b", b"<success>"),
    ],
    ids=["json-bulk", "single-update", "multipart-batch"],
)
def test_every_body_that_stalls_is_answered_408_in_its_endpoints_envelope(
    server: Server, path: str, content_type: str, envelope: bytes
) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(
            b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: " + content_type.encode() + b"\r\n"
            b"Content-Length: 1000\r\n\r\n" + b'{"profiles": ['
        )
        seconds, answer = until_closed(connection)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert envelope in answer, answer
    assert b"too slow" in answer
    assert seconds < BODY_TIMEOUT + SLACK


# Slow bodies ------------------------------------------------------------------------------


def test_twenty_trickling_bodies_leave_healthz_and_a_fetch_answering_within_a_second(
    server: Server, acme: tuple[str, str]
) -> None:
    # Half post the sign-in form, half upload a 5 MB batch file with acme's token; each
    # sends four bytes a second. More than twice the server's threads.
    token, pc_id = acme
    fetch = server.url(f"/rest/v1/profiles/{pc_id}?client=acme")
    seconds = []
    with (
        attackers(server.port, 10, trickle_a_sign_in),
        attackers(server.port, 10, trickle_a_large_upload(token)),
    ):
        for _ in range(6):
            seconds.append(healthz_seconds(server.url("/healthz")))
            seconds.append(healthz_seconds(fetch, {"Authorization": f"Bearer {token}"}))
            time.sleep(0.5)
    assert max(seconds) < 1.0, seconds


def trickle_until_answered(
    connection: socket.socket, piece: bytes, every: float, limit: float = 15
) -> tuple[float, bytes]:
    """Send ``piece`` every ``every`` seconds until an answer starts to arrive: the seconds
    that took (``limit`` at most), and all the server sent before it closed the connection."""
    started = time.monotonic()
    connection.settimeout(every)
    first = b""
    while not first and time.monotonic() - started < limit:
        try:
            first = connection.recv(65536)
        except TimeoutError:
            with contextlib.suppress(OSError):
                connection.sendall(piece)
    seconds = time.monotonic() - started
    _, rest = until_closed(connection)
    return seconds, first + rest


def test_a_body_that_falls_below_the_minimum_rate_is_answered_408_in_its_envelope(
    server: Server,
) -> None:
    # Four bytes a second never leave the body timeout's 2 s without a byte, but are below
    # the minimum rate of 10: by t seconds 10 * (t - 2) bytes must have arrived.
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(
            b"POST /m2/demo/profile/update HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 1000\r\n\r\nmboxPC=p1"
        )
        seconds, answer = trickle_until_answered(connection, b"&a=b", every=1.0)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"<success>false</success>" in answer
    assert b"too slow" in answer
    assert seconds < BODY_TIMEOUT + 1000 / MIN_RATE


# A process streaming one body at a time (GUNICORN_BODY_STREAMS=1) -------------------------

BUFFER_BYTES = 1000


@pytest.fixture(scope="module")
def one_stream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    var_dir = tmp_path_factory.mktemp("one-stream")
    with gunicorn(
        var_dir,
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="2",
        GUNICORN_BODY_STREAMS="1",
        GUNICORN_BODY_BUFFER_BYTES=str(BUFFER_BYTES),
        GUNICORN_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
        GUNICORN_BODY_TIMEOUT=str(BODY_TIMEOUT),
        GUNICORN_BODY_MIN_RATE=str(MIN_RATE),
    ) as running:
        add_demo_client(var_dir)
        yield running


LARGE_BODY = b"batch=pcId,a\n" + b"".join(b"p%04d,x\n" % row for row in range(700))
assert len(LARGE_BODY) > 4 * BUFFER_BYTES


def start_large_upload(server: Server) -> socket.socket:
    """A connection that has sent the head of a batch upload too large to be buffered."""
    connection = socket.create_connection(("127.0.0.1", server.port))
    connection.sendall(
        b"POST /m2/demo/v2/profile/batchUpdate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n" % len(LARGE_BODY)
    )
    return connection


def send_in_pieces(connection: socket.socket, pieces: int, every: float) -> None:
    size = -(-len(LARGE_BODY) // pieces)
    for start in range(0, len(LARGE_BODY), size):
        connection.sendall(LARGE_BODY[start : start + size])
        time.sleep(every)


def test_a_body_waiting_for_a_stream_is_answered_503_past_the_body_timeout(
    one_stream: Server,
) -> None:
    first = start_large_upload(one_stream)
    time.sleep(0.3)  # the first takes the one stream
    second = start_large_upload(one_stream)
    second.sendall(LARGE_BODY)
    waiting_since = time.monotonic()
    # The first keeps its stream, sending its body over 5 s; the other thread stays free.
    sender = threading.Thread(target=send_in_pieces, args=(first, 20, 0.25))
    sender.start()
    assert healthz_seconds(one_stream.url("/healthz")) < 1.0
    _, refused = until_closed(second)
    seconds = time.monotonic() - waiting_since
    sender.join()
    _, served = until_closed(first)
    first.close()
    second.close()
    assert refused.startswith(b"HTTP/1.1 503 "), refused
    assert b"Retry-After: 5" in refused
    assert BODY_TIMEOUT - 0.1 < seconds < BODY_TIMEOUT + SLACK
    assert served.startswith(b"HTTP/1.1 200 "), served


def test_a_body_waiting_for_a_stream_is_read_once_the_stream_ahead_ends(
    one_stream: Server,
) -> None:
    first = start_large_upload(one_stream)
    time.sleep(0.3)
    second = start_large_upload(one_stream)
    second.sendall(LARGE_BODY)
    send_in_pieces(first, 4, 0.1)
    _, served_first = until_closed(first)
    _, served_second = until_closed(second)
    first.close()
    second.close()
    assert served_first.startswith(b"HTTP/1.1 200 "), served_first
    assert served_second.startswith(b"HTTP/1.1 200 "), served_second
