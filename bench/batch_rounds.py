"""``make bench-batch-rounds``: the batch worker against the engine alone, interleaved.

For each size (``BENCH_BATCH_SIZES``, default 500,000 and 50,000 rows of the v2 file
``bench/batch_file.py`` writes) and each of ``BENCH_BATCH_ROUNDS`` rounds (default 3), one
after the other:

- engine: ``bench/batch_raw.engine_alone`` (the rows encoded before the clock starts), and
  the CPU seconds of that span;
- worker: a fresh copy of a migrated SQLite database, and ``processing.run`` in a process of
  its own (``tests/batch_worker_probe.py``, what ``manage.py db_worker`` runs for a batch),
  with its parser process.

It prints each round and the medians: seconds, the engine's CPU seconds, ratio (engine s / worker s, 1.0 = as fast),
the CPU seconds of the writer and of the parser, and the peak RSS of each (the parser is
forked from the writer, so their sum counts the pages they share twice). On a shared
machine the ratio of the interleaved runs is the figure to read, not the seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import batch_file as generate
from bench import batch_raw as raw
from bench.product import worker_environment

ROOT = Path(__file__).resolve().parent.parent
SIZES = tuple(int(n) for n in os.environ.get("BENCH_BATCH_SIZES", "500000,50000").split(","))
ROUNDS = int(os.environ.get("BENCH_BATCH_ROUNDS", "3"))


def migrated(work: Path) -> dict[str, str]:
    """The environment of a worker on a fresh SQLite database in ``work``, migrated once."""
    env = worker_environment(work / "var", DEBUG="false")
    (work / "var" / "batches").mkdir(parents=True)
    manage = [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v", "0"]
    subprocess.run(manage, check=True, env=env, cwd=ROOT)
    shutil.copy(work / "var" / "targetadmin.sqlite3", work / "migrated.sqlite3")
    return env


def worker_round(env: dict[str, str], work: Path, batch_file: Path, rows: int) -> dict[str, float]:
    var = work / "var"
    for leftover in var.glob("targetadmin.sqlite3*"):
        leftover.unlink()
    shutil.copy(work / "migrated.sqlite3", var / "targetadmin.sqlite3")
    stored = var / "batches" / batch_file.name
    shutil.copy(batch_file, stored)
    done = subprocess.run(
        [sys.executable, "-m", "tests.batch_worker_probe", str(stored), str(rows)],
        check=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(done.stdout)
    if result["successful"] != rows:
        raise RuntimeError(f"the batch did not apply cleanly: {result}")
    return result


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="targetadmin-bench-rounds-"))
    try:
        env = migrated(work)
        print(
            f"{'rows':>9} {'round':>5} {'engine s':>9} {'cpu s':>6} {'worker s':>9} {'ratio':>6}"
            f" {'writer cpu s':>13} {'parser cpu s':>13} {'writer MB':>10} {'parser MB':>10}"
        )
        for rows in SIZES:
            batch_file = work / f"batch-{rows}.txt"
            generate.write(batch_file, rows)
            ratios, engines, engine_cpus, workers = [], [], [], []
            for number in range(1, ROUNDS + 1):
                engine, engine_cpu = raw.engine_alone_timed(batch_file, work / "engine.sqlite3")
                result = worker_round(env, work, batch_file, rows)
                ratio = engine / result["seconds"]
                ratios.append(ratio)
                engines.append(engine)
                engine_cpus.append(engine_cpu)
                workers.append(result)
                print(
                    f"{rows:>9,} {number:>5} {engine:>9.2f} {engine_cpu:>6.2f}"
                    f" {result['seconds']:>9.2f}"
                    f" {ratio:>6.2f} {result['cpu_seconds']:>13.2f}"
                    f" {result['parser_cpu_seconds']:>13.2f} {result['peak_kb'] / 1024:>10.1f}"
                    f" {result['parser_peak_kb'] / 1024:>10.1f}",
                    flush=True,
                )
            print(
                f"{rows:>9,} {'med':>5} {statistics.median(engines):>9.2f}"
                f" {statistics.median(engine_cpus):>6.2f}"
                f" {statistics.median(w['seconds'] for w in workers):>9.2f}"
                f" {statistics.median(ratios):>6.2f}"
                f" {statistics.median(w['cpu_seconds'] for w in workers):>13.2f}"
                f" {statistics.median(w['parser_cpu_seconds'] for w in workers):>13.2f}"
                f" {max(w['peak_kb'] for w in workers) / 1024:>10.1f}"
                f" {max(w['parser_peak_kb'] for w in workers) / 1024:>10.1f}"
            )
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        print(f"load average at the end (1, 5, 15 min) on {os.cpu_count()} CPUs: {load}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"took {time.perf_counter() - started:.0f} s")
