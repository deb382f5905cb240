"""Slow clients for tests: attackers that hold connections open, and /healthz timed meanwhile."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# /healthz answers in milliseconds; the margin is for a busy test machine. Starved, it takes
# many seconds or does not answer at all.
HEALTHZ_SECONDS = 2.0
HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"


def healthz_seconds(url: str, headers: dict[str, str] | None = None) -> float:
    """Seconds ``url`` (a ``/healthz``, or another GET sent with ``headers``) takes to answer
    200 on a new connection."""
    started = time.monotonic()
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
        assert response.status == 200
    return time.monotonic() - started


Attack = Callable[[socket.socket, threading.Event], None]


@contextmanager
def attackers(port: int, count: int, attack: Attack) -> Iterator[None]:
    """``count`` clients doing ``attack`` over and over, each on a new connection as soon
    as its last one ends, until the block ends."""
    stopped = threading.Event()

    def attack_again_and_again() -> None:
        while not stopped.is_set():
            try:
                with socket.create_connection(("127.0.0.1", port)) as connection:
                    connection.settimeout(1)
                    attack(connection, stopped)
            except OSError:
                continue

    threads = [threading.Thread(target=attack_again_and_again) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.5)  # every attacker connected, and a line or a byte sent after the first
        yield
    finally:
        stopped.set()
        for thread in threads:
            thread.join(timeout=10)


def healthz_seconds_under_attack(url: str) -> list[float]:
    """``/healthz`` timed six times over 3 s: longer than the tests' timeouts, so attackers
    whose connections were closed, and who came back, are covered too."""
    seconds = []
    for _ in range(6):
        seconds.append(healthz_seconds(url))
        time.sleep(0.5)
    return seconds


def trickle_header_lines(connection: socket.socket, stopped: threading.Event) -> None:
    connection.sendall(HEAD)
    line = 0
    while not stopped.wait(1.0):
        connection.sendall(b"X-Slow-%d: y\r\n" % line)
        line += 1


def trickle_a_body(connection: socket.socket, stopped: threading.Event) -> None:
    """A batch upload of 1,000 bytes, sent two bytes a second."""
    connection.sendall(
        b"POST /m2/demo/v2/profile/batchUpdate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
    )
    while not stopped.wait(0.5):
        connection.sendall(b"x")


def trickle_a_sign_in(connection: socket.socket, stopped: threading.Event) -> None:
    """The sign-in form announcing 100,000 bytes of body, sent four bytes a second."""
    connection.sendall(
        b"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: csrftoken=x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n"
    )
    while not stopped.wait(1.0):
        connection.sendall(b"a=bc")


def trickle_a_large_upload(token: str) -> Attack:
    """An authenticated batch upload to acme announcing 5 MB, sent four bytes a second."""

    def attack(connection: socket.socket, stopped: threading.Event) -> None:
        connection.sendall(
            b"POST /m2/acme/v2/profile/batchUpdate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 5000000\r\n\r\nbatch=pcId,a\n"
        )
        while not stopped.wait(1.0):
            connection.sendall(b"p,x\n")

    return attack


def wait_for_the_server_to_close(connection: socket.socket, stopped: threading.Event) -> None:
    while not stopped.is_set():
        try:
            if not connection.recv(65536):
                return
        except TimeoutError:
            continue
