"""``make bench-spread``: keep-alive connections spread over gunicorn's worker processes.

The bare Django view of the online benchmark (``bench.baseline_wsgi``) under
``gunicorn.conf.py`` as ``make run`` starts it (2 processes on 2 cores), driven by wrk with
16 keep-alive connections, ten runs of 4 seconds in a row. For each run it prints the
requests a second and each worker process's share of the CPU the workers used (read from
``/proc/<pid>/stat``): a process that accepted every connection shows as 100% / 0%, and its
run at about a third of the others' rate. The runs should all lie within 15% of their
median (docs/operations.md#slow-clients-and-nginx-in-front).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

from bench.baseline import BASELINE_PATH
from bench.loopback import free_port
from bench.online import baseline_environment, ensure_wrk, gunicorn, run_wrk

RUNS = 10
SECONDS = 4
CONNECTIONS = 16
WITHIN = 0.15


def worker_pids(master: int) -> list[int]:
    return [int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()]


def cpu_ticks(pid: int) -> int | None:
    """The process's CPU time so far; ``None`` once it has gone (gunicorn recycles a worker
    after ``max_requests``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    # utime and stime: the 14th and 15th fields, after the command name in parentheses.
    fields = stat.rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def shares(before: list[int | None], after: list[int | None]) -> str:
    used = [
        end - start
        for start, end in zip(before, after, strict=True)
        if start is not None and end is not None
    ]
    if len(used) < len(before):
        return "(a worker was recycled during the run)"
    return " / ".join(f"{ticks / max(1, sum(used)):.0%}" for ticks in used)


def main() -> int:
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="targetadmin-spread-") as work:
        directory = Path(work)
        paths_file = directory / "paths.txt"
        paths_file.write_text(BASELINE_PATH + "\n")
        port = free_port()
        env = baseline_environment()
        with gunicorn(env, port, "bench.baseline_wsgi", BASELINE_PATH, directory / "log") as server:
            run_wrk(wrk, port, paths_file, None, seconds=2, connections=CONNECTIONS)  # warm-up
            rates = []
            print(f"{'run':>3} {'req/s':>8}  CPU share of each worker process")
            for number in range(1, RUNS + 1):
                workers = worker_pids(server.pid)
                before = [cpu_ticks(pid) for pid in workers]
                figures = run_wrk(
                    wrk, port, paths_file, None, seconds=SECONDS, connections=CONNECTIONS
                )
                after = [cpu_ticks(pid) for pid in workers]
                rates.append(figures.rps)
                print(f"{number:>3} {figures.rps:>8.0f}  {shares(before, after)}", flush=True)
    median = statistics.median(rates)
    furthest = max(abs(rate - median) / median for rate in rates)
    met = furthest <= WITHIN
    print(
        f"median {median:.0f} req/s; the furthest run is {furthest:.1%} from it"
        f" ({'met' if met else 'MISSED'}: every run within {WITHIN:.0%})"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
