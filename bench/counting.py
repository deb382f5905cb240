"""``make bench-counting``: the CPU a counted request costs for ``/metrics``.

What ``profiles.rules.metrics.count_request`` does for each request, held in the process's
memory and moved into the shared values once a second, against writing each request
straight into the shared values (``prometheus_client``'s multiprocess mode: its counter,
its histogram's sum and bucket, each a write to a memory-mapped file under one lock per
process), in one thread and in four at once (a gunicorn worker's threads). Rounds
alternate which goes first; medians with the range of the rounds, in µs of the process's
CPU per request, to set beside the CPU a fetch or an update costs (``make bench-online``'s
``CPU µs`` column; docs/performance.md#integration-tokens-and-counting-for-metrics).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable

ROUNDS = 7
REQUESTS = 50_000
SECONDS = 0.004  # a fetch's time in the application


def cpu_us_per_request(count: Callable[[], None], threads: int) -> float:
    def requests() -> None:
        for _ in range(REQUESTS):
            count()

    running = [threading.Thread(target=requests) for _ in range(threads)]
    started = time.process_time()
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    return (time.process_time() - started) / (threads * REQUESTS) * 1e6


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="targetadmin-counting-") as directory:
        # Before prometheus_client is first imported: its multiprocess mode, as in production.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        from profiles.rules import metrics

        counted, timed = metrics._REQUEST_CHILDREN[metrics.Endpoint.FETCH, 2]

        def straight() -> None:
            counted.inc()
            timed.observe(SECONDS)

        def held() -> None:
            metrics.count_request(metrics.Endpoint.FETCH, 200, time.perf_counter() - SECONDS)

        ways = {"written straight to the shared values": straight, "held, moved each second": held}
        print(f"CPU µs per counted request: {ROUNDS} rounds of {REQUESTS:,} per thread")
        for threads in (1, 4):
            figures: dict[str, list[float]] = {name: [] for name in ways}
            for number in range(ROUNDS):
                order = list(ways) if number % 2 == 0 else list(reversed(ways))
                for name in order:
                    figures[name].append(cpu_us_per_request(ways[name], threads))
            for name, each in figures.items():
                print(
                    f"  {threads} thread{'s' if threads > 1 else ''}, {name}: "
                    f"{statistics.median(each):.2f} ({min(each):.2f}–{max(each):.2f})"
                )
        metrics.HELD.move()
    return 0


if __name__ == "__main__":
    sys.exit(main())
