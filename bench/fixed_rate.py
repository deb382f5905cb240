"""Latency at a fixed request rate, for the online benchmark (``bench/online.py``).

Debian's wrk sends each connection's next request as soon as the previous one is answered,
so it measures the highest rate but cannot hold a chosen one (that is wrk2, which Debian
does not ship). This generator is open-loop instead: request *i* is due at
``start + i / rate`` whether or not earlier ones have been answered, and its latency counts
from when it was due, so a stall in the server shows in the figures instead of quietly
slowing the sender down (no "coordinated omission"). It runs in its own process, on asyncio
with a pool of keep-alive connections, sends the paths of a file in turn as GETs (with
``Authorization: Bearer $BENCH_TOKEN`` when that is set), and prints one JSON line::

    python -m bench.fixed_rate --port 8000 --rate 300 --duration 10 PATHS_FILE
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]

# Past this, an unanswered request counts as a timeout and the run ends regardless.
DRAIN_SECONDS = 30.0


@dataclass(slots=True)
class Tally:
    latencies: list[float] = field(default_factory=list)  # seconds from due to answered
    status_errors: int = 0
    socket_errors: int = 0
    timeouts: int = 0
    first_due: float = 0.0
    last_answer: float = 0.0

    def summary(self, rate: float) -> dict[str, float | int]:
        answered = sorted(self.latencies)
        elapsed = max(self.last_answer - self.first_due, 1e-9)
        return {
            "rate": rate,
            "requests": len(answered),
            "achieved_rps": round(len(answered) / elapsed, 1),
            "p50_us": round(percentile(answered, 50) * 1e6),
            "p90_us": round(percentile(answered, 90) * 1e6),
            "p99_us": round(percentile(answered, 99) * 1e6),
            "max_us": round(answered[-1] * 1e6) if answered else 0,
            "status_errors": self.status_errors,
            "socket_errors": self.socket_errors,
            "timeouts": self.timeouts,
        }


def percentile(ordered: Sequence[float], rank: float) -> float:
    """The nearest-rank percentile of an ascending sequence; 0 for an empty one."""
    if not ordered:
        return 0.0
    index = max(0, math.ceil(rank / 100 * len(ordered)) - 1)
    return ordered[min(index, len(ordered) - 1)]


def request_bytes(path: str, host: str, token: str | None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "User-Agent: targetadmin-bench"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def exchange(stream: Stream, request: bytes) -> tuple[int, bool]:
    """Send one request and read its whole response: ``(status, connection reusable)``."""
    reader, writer = stream
    writer.write(request)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("the server closed the connection")
    status = int(status_line.split()[1])
    length, reusable, chunked = 0, True, False
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value == "close":
            reusable = False
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
    if chunked:
        while size := int((await reader.readline()).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readline()
    else:
        await reader.readexactly(length)
    return status, reusable


class Sender:
    """Sends due requests over at most ``connections`` keep-alive connections."""

    def __init__(self, port: int, connections: int, tally: Tally) -> None:
        self.port = port
        self.tally = tally
        self.idle: asyncio.Queue[Stream | None] = asyncio.Queue()
        for _ in range(connections):
            self.idle.put_nowait(None)  # a slot without an open connection yet

    async def send(self, request: bytes, due: float) -> None:
        loop = asyncio.get_running_loop()
        stream = await self.idle.get()
        try:
            for attempt in range(2):
                reused = stream is not None
                if stream is None:
                    stream = await asyncio.open_connection("127.0.0.1", self.port)
                try:
                    status, reusable = await exchange(stream, request)
                except (ConnectionError, asyncio.IncompleteReadError):
                    close(stream)
                    stream = None
                    if reused and attempt == 0:
                        continue  # a kept-alive connection the server had closed: retry once
                    self.tally.socket_errors += 1
                    return
                now = loop.time()
                self.tally.latencies.append(now - due)
                self.tally.last_answer = max(self.tally.last_answer, now)
                if not 200 <= status < 300:
                    self.tally.status_errors += 1
                if not reusable:
                    close(stream)
                    stream = None
                return
        except OSError:
            self.tally.socket_errors += 1
            stream = None
        finally:
            self.idle.put_nowait(stream)

    async def close_all(self) -> None:
        while not self.idle.empty():
            stream = self.idle.get_nowait()
            if stream is not None:
                close(stream)


def close(stream: Stream) -> None:
    stream[1].close()


async def run(
    port: int,
    paths: Sequence[str],
    *,
    rate: float,
    duration: float,
    connections: int,
    token: str | None,
) -> Tally:
    """Send ``rate * duration`` requests, each when it is due; answers within the drain time."""
    loop = asyncio.get_running_loop()
    tally = Tally()
    sender = Sender(port, connections, tally)
    host = f"127.0.0.1:{port}"
    requests = itertools.cycle([request_bytes(path, host, token) for path in paths])
    total = max(1, int(rate * duration))
    start = tally.first_due = loop.time() + 0.05
    pending: set[asyncio.Task[None]] = set()
    for index in range(total):
        due = start + index / rate
        if (wait := due - loop.time()) > 0:
            await asyncio.sleep(wait)
        task = asyncio.create_task(sender.send(next(requests), due))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        _, unfinished = await asyncio.wait(set(pending), timeout=DRAIN_SECONDS)
        for task in unfinished:
            task.cancel()
        tally.timeouts += len(unfinished)
    await sender.close_all()
    return tally


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("paths_file", type=Path)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    paths = [line for line in args.paths_file.read_text().splitlines() if line]
    tally = asyncio.run(
        run(
            args.port,
            paths,
            rate=args.rate,
            duration=args.duration,
            connections=args.connections,
            token=os.environ.get("BENCH_TOKEN") or None,
        )
    )
    print(json.dumps(tally.summary(args.rate)))


if __name__ == "__main__":
    main()
