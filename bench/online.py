"""Benchmark of the online profile APIs: throughput, latency, and what authentication costs.

``make bench`` runs it (``python -m bench.online --help`` for the knobs). In a temporary
directory it seeds a fresh SQLite database with two clients, ``auth-off`` (Require
Authentication off) and ``auth-on`` (on, with an active token), each holding the same
profiles; starts gunicorn with the production configuration (``gunicorn.conf.py``) on a
free loopback port under ``bench.online_settings``; and measures, in one run:

1. the baseline: a view returning a small JSON body through the product's middleware stack;
2. the profile fetch by thirdPartyId, authentication off and on;
3. the single profile update (GET with ``mbox3rdPartyId``), authentication off and on.

Highest rate: Debian's ``wrk`` (installed with apt-get when missing) with
``bench/wrk/paths.lua``, a fixed duration and connection count, after a warm-up run of the
same case. Latency at half that rate: ``bench/fixed_rate.py``, an open-loop generator in its
own process that counts latency from when each request was due. Every figure of one table
comes from the same run, so the ratios compare like with like on a noisy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.online_views import BASELINE_PATH

ROOT = Path(__file__).resolve().parent.parent
LUA_SCRIPT = ROOT / "bench" / "wrk" / "paths.lua"
SETTINGS_MODULE = "bench.online_settings"
OPEN_CLIENT = "auth-off"
GUARDED_CLIENT = "auth-on"

# The targets (docs/performance.md).
TARGET_RATIO_TO_BASELINE = 0.8
TARGET_AUTH_COST = 0.05
TARGET_P99_AT_HALF_RATE_MS = 25.0


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    paths: list[str]
    authenticated: bool = False


@dataclass(frozen=True, slots=True)
class Figures:
    """One measured run: requests per second and latencies in milliseconds."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int

    @classmethod
    def from_report(cls, report: dict[str, float], rps: float) -> Figures:
        errors = sum(
            int(report.get(name, 0))
            for name in (
                "status_errors",
                "socket_errors",
                "connect_errors",
                "read_errors",
                "write_errors",
                "timeouts",
            )
        )
        return cls(
            rps=rps,
            p50_ms=report["p50_us"] / 1000,
            p99_ms=report["p99_us"] / 1000,
            requests=int(report["requests"]),
            errors=errors,
        )


def wrk_figures(report: dict[str, float]) -> Figures:
    """Figures from the JSON line ``paths.lua`` prints."""
    return Figures.from_report(report, report["requests"] / (report["duration_us"] / 1e6))


def cases(third_party_ids: Sequence[str]) -> list[Case]:
    def fetches(client: str) -> list[str]:
        return [f"/rest/v1/profiles/thirdPartyId/{tp}?client={client}" for tp in third_party_ids]

    def updates(client: str) -> list[str]:
        return [
            f"/m2/{client}/profile/update?mbox3rdPartyId={tp}&profile.visits={n}&profile.tier=gold"
            for n, tp in enumerate(third_party_ids)
        ]

    return [
        Case("baseline", [BASELINE_PATH]),
        Case("fetch, auth off", fetches(OPEN_CLIENT)),
        Case("fetch, auth on", fetches(GUARDED_CLIENT), authenticated=True),
        Case("update, auth off", updates(OPEN_CLIENT)),
        Case("update, auth on", updates(GUARDED_CLIENT), authenticated=True),
    ]


def ensure_wrk() -> str:
    """The path of ``wrk``, installing Debian's package when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("wrk is not installed: run `sudo apt-get install wrk` and try again.")
    print("Installing wrk with apt-get…", flush=True)
    apt = ["apt-get", "-qq", "-o", "DPkg::Lock::Timeout=300"]
    subprocess.run([*apt, "update"], check=True)
    subprocess.run(
        [*apt, "install", "-y", "wrk"],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    found = shutil.which("wrk")
    if not found:
        sys.exit("apt-get did not install wrk.")
    return found


def bench_environment(directory: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "SECRET_KEY", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
        TARGETADMIN_VAR_DIR=str(directory),
        DATABASE_URL=f"sqlite:///{directory / 'bench.sqlite3'}",
        PYTHONPATH=str(ROOT),
    )
    return env


def seed(env: dict[str, str], profiles: int) -> tuple[list[str], str]:
    """Create the database in a child process; returns the thirdPartyIds and the token."""
    completed = subprocess.run(
        [sys.executable, "-m", "bench.online_seed", str(profiles)],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    seeded = json.loads(completed.stdout.strip().splitlines()[-1])
    return seeded["third_party_ids"], seeded["token"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def gunicorn(env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """gunicorn with ``gunicorn.conf.py`` (the production configuration) on ``port``."""
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"]
    if (ROOT / "gunicorn.conf.py").exists():
        command[3:3] = ["--config", str(ROOT / "gunicorn.conf.py")]
    else:
        print("No gunicorn.conf.py: gunicorn runs with its own defaults.", flush=True)
    command.append("targetadmin.wsgi")
    with log.open("wb") as output:
        server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=output, stderr=output)
        try:
            wait_until_ready(port, server)
            yield server
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def wait_until_ready(port: int, server: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    url = f"http://127.0.0.1:{port}{BASELINE_PATH}"
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gunicorn exited with status {server.returncode}; see its log.")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    sys.exit("gunicorn did not answer within a minute.")


def run_wrk(
    wrk: str, port: int, paths_file: Path, token: str | None, *, seconds: int, connections: int
) -> Figures:
    command = [
        wrk,
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{seconds}s",
        "--timeout",
        "10s",
        "--script",
        str(LUA_SCRIPT),
        f"http://127.0.0.1:{port}",
        "--",
        str(paths_file),
    ]
    env = {**os.environ, "BENCH_TOKEN": token or ""}
    completed = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return wrk_figures(json.loads(completed.stdout.strip().splitlines()[-1]))


def run_fixed_rate(
    env: dict[str, str],
    port: int,
    paths_file: Path,
    token: str | None,
    *,
    rate: float,
    seconds: int,
) -> Figures:
    command = [
        sys.executable,
        "-m",
        "bench.fixed_rate",
        "--port",
        str(port),
        "--rate",
        f"{rate:.1f}",
        "--duration",
        str(seconds),
        str(paths_file),
    ]
    child_env = {**env, "BENCH_TOKEN": token or ""}
    completed = subprocess.run(
        command, env=child_env, cwd=ROOT, check=True, capture_output=True, text=True
    )
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    return Figures.from_report(report, report["achieved_rps"])


@dataclass(frozen=True, slots=True)
class Row:
    case: str
    peak: Figures
    ratio: float
    half_rate: Figures | None


def table(rows: Sequence[Row], auth_costs: dict[str, float]) -> str:
    lines = [
        f"{'case':<18} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'× base':>7}"
        f" {'½ rate':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}",
    ]
    for row in rows:
        half = row.half_rate
        errors = row.peak.errors + (half.errors if half else 0)
        half_columns = (
            f" {half.rps:>8.0f} {half.p50_ms:>8.1f} {half.p99_ms:>8.1f}" if half else " " * 27
        )
        lines.append(
            f"{row.case:<18} {row.peak.rps:>8.0f} {row.peak.p50_ms:>8.1f} {row.peak.p99_ms:>8.1f}"
            f" {row.ratio:>7.2f}{half_columns} {errors:>7}"
        )
    for api, cost in auth_costs.items():
        lines.append(f"authentication costs {cost:+.1%} of the {api}'s requests per second")
    return "\n".join(lines)


def verdicts(rows: Sequence[Row], auth_costs: dict[str, float]) -> list[str]:
    """One line per target: what was measured and whether it is met."""
    by_case = {row.case: row for row in rows}
    found = []
    for name in ("fetch, auth on", "update, auth on"):
        ratio = by_case[name].ratio
        met = ratio >= TARGET_RATIO_TO_BASELINE
        found.append(
            f"{'met   ' if met else 'MISSED'} {name}: {ratio:.2f}× baseline (target ≥ {TARGET_RATIO_TO_BASELINE})"
        )
    for api, cost in auth_costs.items():
        met = cost <= TARGET_AUTH_COST
        found.append(
            f"{'met   ' if met else 'MISSED'} authentication on the {api}: {cost:+.1%} (target ≤ {TARGET_AUTH_COST:.0%})"
        )
    for row in rows:
        if row.half_rate is None:
            continue
        met = row.half_rate.p99_ms < TARGET_P99_AT_HALF_RATE_MS
        found.append(
            f"{'met   ' if met else 'MISSED'} {row.case}: p99 {row.half_rate.p99_ms:.1f} ms at half rate (target < {TARGET_P99_AT_HALF_RATE_MS:.0f} ms)"
        )
    return found


def auth_cost(off: Figures, on: Figures) -> float:
    """The share of requests per second lost by turning authentication on."""
    return 1 - on.rps / off.rps


def measure_round(
    wrk: str,
    env: dict[str, str],
    port: int,
    files: dict[str, Path],
    all_cases: Sequence[Case],
    token: str,
    options: argparse.Namespace,
) -> tuple[list[Row], dict[str, float]]:
    peaks: dict[str, Figures] = {}
    for case in all_cases:
        case_token = token if case.authenticated else None
        print(f"  {case.name}: warm-up {options.warmup} s, then {options.duration} s", flush=True)
        run_wrk(
            wrk,
            port,
            files[case.name],
            case_token,
            seconds=options.warmup,
            connections=options.connections,
        )
        peaks[case.name] = run_wrk(
            wrk,
            port,
            files[case.name],
            case_token,
            seconds=options.duration,
            connections=options.connections,
        )
    half_rates: dict[str, Figures] = {}
    if options.fixed_rate_duration > 0:
        for case in all_cases:
            rate = peaks[case.name].rps / 2
            print(
                f"  {case.name}: {rate:.0f} req/s for {options.fixed_rate_duration} s", flush=True
            )
            half_rates[case.name] = run_fixed_rate(
                env,
                port,
                files[case.name],
                token if case.authenticated else None,
                rate=rate,
                seconds=options.fixed_rate_duration,
            )
    baseline = peaks["baseline"].rps
    rows = [
        Row(name, figures, figures.rps / baseline, half_rates.get(name))
        for name, figures in peaks.items()
    ]
    costs = {
        "fetch": auth_cost(peaks["fetch, auth off"], peaks["fetch, auth on"]),
        "update": auth_cost(peaks["update, auth off"], peaks["update, auth on"]),
    }
    return rows, costs


def median_rows(rounds: Sequence[list[Row]]) -> list[Row]:
    """Per case, the median of each figure over the rounds (ratios taken within a round)."""

    def median_figures(figures: Sequence[Figures]) -> Figures:
        return Figures(
            rps=statistics.median(f.rps for f in figures),
            p50_ms=statistics.median(f.p50_ms for f in figures),
            p99_ms=statistics.median(f.p99_ms for f in figures),
            requests=sum(f.requests for f in figures),
            errors=sum(f.errors for f in figures),
        )

    merged = []
    for index, first in enumerate(rounds[0]):
        same = [rows[index] for rows in rounds]
        halves = [row.half_rate for row in same if row.half_rate is not None]
        merged.append(
            Row(
                first.case,
                median_figures([row.peak for row in same]),
                statistics.median(row.ratio for row in same),
                median_figures(halves) if halves else None,
            )
        )
    return merged


def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    import django

    return (
        f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
        f"Django {django.get_version()}, {platform.system()} {platform.release()}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.online", description="Benchmark of the online profile APIs."
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per case")
    parser.add_argument("--connections", type=int, default=16, help="wrk's open connections")
    parser.add_argument("--profiles", type=int, default=10_000, help="profiles per client")
    parser.add_argument("--rounds", type=int, default=1, help="repeat and report medians")
    parser.add_argument(
        "--fixed-rate-duration",
        type=int,
        default=10,
        help="seconds at half of each case's highest rate (0 skips that part)",
    )
    options = parser.parse_args(argv)
    wrk = ensure_wrk()
    print(f"Online APIs benchmark on {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="targetadmin-bench-") as name:
        directory = Path(name)
        env = bench_environment(directory)
        third_party_ids, token = seed(env, options.profiles)
        all_cases = cases(third_party_ids)
        files = {}
        for number, case in enumerate(all_cases):
            files[case.name] = directory / f"paths-{number}.txt"
            files[case.name].write_text("\n".join(case.paths) + "\n")
        port = free_port()
        rounds: list[list[Row]] = []
        round_costs: list[dict[str, float]] = []
        with gunicorn(env, port, directory / "gunicorn.log"):
            for number in range(1, options.rounds + 1):
                print(f"Round {number} of {options.rounds}", flush=True)
                rows, costs = measure_round(wrk, env, port, files, all_cases, token, options)
                rounds.append(rows)
                round_costs.append(costs)
    rows = median_rows(rounds)
    costs = {api: statistics.median(c[api] for c in round_costs) for api in round_costs[0]}
    print()
    print(
        f"wrk: {options.connections} connections, {options.duration} s per case after "
        f"{options.warmup} s warm-up; ½ rate: open-loop at half each case's req/s for "
        f"{options.fixed_rate_duration} s; {options.profiles} profiles per client"
        + (f"; medians of {options.rounds} rounds" if options.rounds > 1 else "")
    )
    print(table(rows, costs))
    print()
    print("\n".join(verdicts(rows, costs)))
    if any(row.peak.errors or (row.half_rate and row.half_rate.errors) for row in rows):
        print("Some requests failed (see the errors column): the figures are not valid.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
