"""Servers on loopback ports, for the benchmarks and the tests alike: a free port, waiting
until a started server listens on it, and one HTTP request to it."""

from __future__ import annotations

import http.client
import socket
import subprocess
import time


def free_port() -> int:
    """A loopback port no socket holds right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_listening(
    port: int, *processes: subprocess.Popen[bytes], seconds: float = 60
) -> None:
    """Return once ``port`` accepts a connection; fail if one of the ``processes`` serving it
    exits first, or after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            raise RuntimeError(f"the server for port {port} exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listened on port {port} within {seconds:g} s")


def request(port: int, method: str, path: str, body: object = None, **headers: str) -> bytes:
    """``method path`` on the loopback ``port``: the body of its 200 answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    connection.request(method, path, body=body, headers=headers)  # type: ignore[arg-type]
    response = connection.getresponse()
    content = response.read()
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"{method} {path}: {response.status} {content[:300]!r}")
    return content
