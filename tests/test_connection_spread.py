"""Keep-alive connections are spread over gunicorn's worker processes
(docs/operations.md#slow-clients-and-nginx-in-front).

Every worker waits on the one listening socket. Without a fair share, whichever process
woke first could accept all of a connection pool's connections and serve them alone for as
long as the pool lived, while its sibling idled.
"""

from __future__ import annotations

import os
import socket
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.gunicorn_server import gunicorn

POOL = 16
WORKERS = 2
ROUNDS = 5


def sockets_held(pid: int) -> int:
    held = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            held += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            continue  # closed while listed
    return held


def worker_pids(master: int) -> list[int]:
    """gunicorn's worker processes, once all ``WORKERS`` have started."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if len(children) == WORKERS:
            return [int(pid) for pid in children]
        time.sleep(0.1)
    raise AssertionError(f"gunicorn did not start {WORKERS} workers")


def open_pool(port: int) -> list[socket.socket]:
    """``POOL`` kept-alive connections, each after one answered request, as a client's pool."""
    pool = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(POOL)]
    for connection in pool:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    for connection in pool:
        assert connection.recv(65536).startswith(b"HTTP/1.1 200")
    return pool


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads /proc")
def test_it_spreads_a_pools_connections_evenly_over_the_workers(tmp_path: Path) -> None:
    with gunicorn(tmp_path, WEB_CONCURRENCY=str(WORKERS), GUNICORN_THREADS="4") as server:
        workers = worker_pids(server.pid)
        idle = {pid: sockets_held(pid) for pid in workers}
        with ExitStack() as warm_up:  # each worker's first request imports the application
            for connection in open_pool(server.port):
                warm_up.callback(connection.close)
        shares = []
        for _ in range(ROUNDS):
            time.sleep(0.3)  # the previous pool's connections closed on the server's side
            with ExitStack() as stack:
                for connection in open_pool(server.port):
                    stack.callback(connection.close)
                shares.append(sorted(sockets_held(pid) - idle[pid] for pid in workers))

    fair = POOL // WORKERS
    assert all(share[0] >= fair - 2 for share in shares), shares
