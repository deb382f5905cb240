"""Benchmark of the online profile APIs: throughput, latency, and what authentication costs.

``make bench-online`` runs it on SQLite and then on a throwaway PostgreSQL
(``python -m bench.online --help`` for the knobs). Every figure of one table comes from the
same run, so the ratios compare like with like on a noisy machine. In a temporary directory
it seeds a fresh database (SQLite, or the PostgreSQL database ``DATABASE_URL`` names with
``--database postgresql``) with the clients ``auth-off`` (Require Authentication off) and
``auth-on`` (on, with an active token and a fetch-only integration token), each holding the
same profiles, and measures:

1. the server's own limit: a raw WSGI application answering the same small JSON body
   (``bench.hello_wsgi``: no Django at all), served by gunicorn with the product's own
   configuration (``gunicorn.conf.py``: its worker class, the worker processes ``make run``
   starts and the threads it gives each); then the baseline: a bare Django project with
   one ``JsonResponse`` view (``bench.baseline``: no apps, no middleware, no database)
   under the same configuration; each server is stopped before the next starts;
2. the product as ``make run`` starts it, the same gunicorn configuration plus one
   ``db_worker``: the profile fetch by thirdPartyId and the single profile update (GET with
   ``mbox3rdPartyId``), each with authentication off and on, and the fetch again with the
   integration token (its permissions checked too, docs/tokens.md#permissions);
   then, with ``--metrics both`` (the default), the two authenticated cases again on two
   fresh servers alike but for ``/metrics`` (``METRICS_TOKEN`` set: every request counted,
   docs/operations.md#metrics), off and on, for what counting costs them;
   ``--metrics on`` or ``off`` runs every case one way only;
3. single updates while a batch file is applied: a 500,000-row batch alone, then the same
   rows for another client with single updates sent meanwhile at a quarter of their highest
   rate (the batch's worker takes one of the two cores: at half the rate the machine would
   have more work than CPU, and any queue grows without bound).

Highest rate: Debian's ``wrk`` (installed with apt-get when missing) with
``bench/wrk/paths.lua``, a fixed duration and connection count, after a warm-up run of the
same case. Latency at half that rate: ``bench/fixed_rate.py``, an open-loop generator in its
own process that counts latency from when each request was due.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import runpy
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

from bench import batch_file
from bench.baseline import BASELINE_PATH
from bench.loopback import free_port, request
from bench.online_seed import BATCH_ALONE_CLIENT, BATCH_BUSY_CLIENT, GUARDED_CLIENT, OPEN_CLIENT

ROOT = Path(__file__).resolve().parent.parent
LUA_SCRIPT = ROOT / "bench" / "wrk" / "paths.lua"
# What django-tasks-db's worker logs once it is up and polling.
WORKER_READY = "Starting worker"
BASELINE = "bare Django view"
HELLO = "raw WSGI hello"
FETCH_ON = "fetch, auth on"
FETCH_OFF = "fetch, auth off"
FETCH_INTEGRATION = "fetch, integration"
UPDATE_ON = "update, auth on"
UPDATE_OFF = "update, auth off"

# The targets (docs/performance.md#online-apis).
# Each database's targets against the bare Django view (docs/performance.md#online-apis): the
# lane skips Django, so on SQLite the fetch should pass Django's emptiest view.
TARGET_RATIOS = {
    "sqlite": {FETCH_ON: 1.0, UPDATE_ON: 0.5},
    "postgresql": {FETCH_ON: 0.6, UPDATE_ON: 0.3},
}
TARGET_AUTH_COST = 0.05
# The tokens a case may send (seeded by bench.online_seed).
CLIENT_TOKEN = "token"  # noqa: S105 (the name of a seeded value)
INTEGRATION_TOKEN = "integration_token"  # noqa: S105 (the name of a seeded value)
# What authentication costs is reported for these, each against the case without it.
AUTH_COSTS = {
    "fetch": (FETCH_OFF, FETCH_ON),
    "fetch with an integration token": (FETCH_OFF, FETCH_INTEGRATION),
    "update": (UPDATE_OFF, UPDATE_ON),
}
TARGET_P99_AT_FULL_LOAD_MS = {UPDATE_ON: 100.0}
TARGET_P99_AT_HALF_RATE_MS = {FETCH_ON: 25.0, UPDATE_ON: 25.0}
TARGET_P99_DURING_BATCH_MS = 100.0
# What counting for /metrics may cost the hot calls' requests per second.
TARGET_METRICS_COST = 0.03
# Turns /metrics, and so the counting, on in the product (docs/operations.md#metrics).
METRICS_TOKEN = "bench-metrics-token-" + "0" * 32
METRICS_SETTINGS = ("METRICS_TOKEN", "METRICS_ALLOWED_NETWORKS", "METRICS_DIR")
METERED = ", metrics on"
UNMETERED = ", metrics off"


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    paths: list[str]
    token: str = ""  # the token it sends: CLIENT_TOKEN, INTEGRATION_TOKEN, or none


@dataclass(frozen=True, slots=True)
class Figures:
    """One measured run: requests per second and latencies in milliseconds."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    # CPU the machine spent per request outside the load generator, in µs (0: not measured):
    # steadier than requests per second on a shared machine, where it is the server's.
    cpu_us: float = 0.0

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


def product_cases(third_party_ids: Sequence[str]) -> list[Case]:
    def fetches(client: str) -> list[str]:
        return [f"/rest/v1/profiles/thirdPartyId/{tp}?client={client}" for tp in third_party_ids]

    def updates(client: str) -> list[str]:
        return [
            f"/m2/{client}/profile/update?mbox3rdPartyId={tp}&profile.visits={n}&profile.tier=gold"
            for n, tp in enumerate(third_party_ids)
        ]

    return [
        Case(FETCH_OFF, fetches(OPEN_CLIENT)),
        Case(FETCH_ON, fetches(GUARDED_CLIENT), CLIENT_TOKEN),
        Case(FETCH_INTEGRATION, fetches(GUARDED_CLIENT), INTEGRATION_TOKEN),
        Case(UPDATE_OFF, updates(OPEN_CLIENT)),
        Case(UPDATE_ON, updates(GUARDED_CLIENT), CLIENT_TOKEN),
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


def make_run_default(name: str) -> str | None:
    """The default ``bin/run`` (``make run``) gives the environment variable ``name``."""
    found = re.search(rf'{name}="\$\{{{name}:-([^}}]*)\}}"', (ROOT / "bin" / "run").read_text())
    return found.group(1) if found else None


def server_environment() -> dict[str, str]:
    """gunicorn's environment as ``make run`` gives it: its defaults unless already set."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "BIND"}
        and key not in METRICS_SETTINGS
    }
    workers = make_run_default("WEB_CONCURRENCY")
    if workers is not None:
        env.setdefault("WEB_CONCURRENCY", workers)
    env["PYTHONPATH"] = str(ROOT)
    return env


def gunicorn_settings(env: dict[str, str]) -> str:
    """Workers, threads and worker class ``gunicorn.conf.py`` gives under ``env``."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    worker = conf["worker_class"]
    if isinstance(worker, str):
        worker_name = worker
    else:  # a class of gunicorn.conf.py's own, run here without a module name
        base = worker.__mro__[1]
        worker_name = f"gunicorn.conf.py's {worker.__name__}, a {base.__module__}.{base.__name__}"
    return f"{conf['workers']} workers × {conf['threads']} threads ({worker_name})"


def product_environment(directory: Path, database_url: str) -> dict[str, str]:
    env = server_environment()
    env.update(
        DJANGO_SETTINGS_MODULE="targetadmin.settings",
        TARGETADMIN_VAR_DIR=str(directory),
        DATABASE_URL=database_url,
    )
    return env


def metrics_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` with ``/metrics`` on: every request counted."""
    return {**env, "METRICS_TOKEN": METRICS_TOKEN}


def metered(case: Case, suffix: str = METERED) -> Case:
    """``case`` in the metrics comparison: against the product with metrics on, or with
    ``UNMETERED``, against its twin with metrics off."""
    return Case(f"{case.name}{suffix}", case.paths, case.token)


def in_order_of(number: int, cases: Sequence[Case]) -> list[Case]:
    """``cases`` in the order round ``number`` measures them: a pair that is compared (the
    fetch with either token) swaps places every other round, so that neither always runs
    on a server that has served longer."""
    ordered = list(cases)
    names = [case.name for case in ordered]
    if number % 2 == 0 and FETCH_ON in names and FETCH_INTEGRATION in names:
        first, second = names.index(FETCH_ON), names.index(FETCH_INTEGRATION)
        ordered[first], ordered[second] = ordered[second], ordered[first]
    return ordered


def baseline_environment() -> dict[str, str]:
    env = server_environment()
    env["DJANGO_SETTINGS_MODULE"] = "bench.baseline"
    return env


def seed(env: dict[str, str], profiles: int) -> tuple[list[str], dict[str, str]]:
    """Create the database in a child process; returns the thirdPartyIds and the tokens, by
    :data:`CLIENT_TOKEN` and :data:`INTEGRATION_TOKEN`."""
    completed = subprocess.run(
        [sys.executable, "-m", "bench.online_seed", str(profiles)],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    seeded = json.loads(completed.stdout.strip().splitlines()[-1])
    tokens = {name: seeded[name] for name in (CLIENT_TOKEN, INTEGRATION_TOKEN)}
    return seeded["third_party_ids"], tokens


@contextmanager
def started(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process with its output in ``log``, terminated when the block ends."""
    with log.open("ab") as output:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=output, stderr=output)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def gunicorn(
    env: dict[str, str], port: int, application: str, ready_path: str, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """gunicorn with ``gunicorn.conf.py`` (the production configuration) on ``port``."""
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(ROOT / "gunicorn.conf.py"),
        "--bind",
        f"127.0.0.1:{port}",
        application,
    ]
    with started(command, env, log) as server:
        wait_until_ready(port, server, ready_path)
        yield server


def wait_until_ready(
    port: int, server: subprocess.Popen[bytes], path: str, seconds: float = 60
) -> None:
    deadline = time.monotonic() + seconds
    url = f"http://127.0.0.1:{port}{path}"
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
    busy, load = machine_cpu_seconds(), children_cpu_seconds()
    completed = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    served = machine_cpu_seconds() - busy - (children_cpu_seconds() - load)
    figures = wrk_figures(json.loads(completed.stdout.strip().splitlines()[-1]))
    return replace(figures, cpu_us=served / max(figures.requests, 1) * 1e6)


def machine_cpu_seconds() -> float:
    """CPU time every processor of the machine has spent busy since it booted (/proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(field) for field in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle and waiting on I/O
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU time this process's finished children (wrk) have spent."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def run_fixed_rate(
    port: int, paths_file: Path, token: str | None, *, rate: float, seconds: int
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
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_TOKEN": token or ""}
    completed = subprocess.run(
        command, env=env, cwd=ROOT, check=True, capture_output=True, text=True
    )
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    return Figures.from_report(report, report["achieved_rps"])


@dataclass(frozen=True, slots=True)
class Row:
    case: str
    peak: Figures
    ratio: float
    half_rate: Figures | None


@dataclass(frozen=True, slots=True)
class BatchFigures:
    """A batch file applied alone, and again while single updates arrive at a fixed rate."""

    rows: int
    alone_seconds: float
    busy_seconds: float
    updates: Figures
    overlapped: bool  # the batch was still being applied when the last update was answered


def table(
    rows: Sequence[Row], auth_costs: dict[str, float], metrics_costs: dict[str, float] | None = None
) -> str:
    width = max(18, *(len(row.case) for row in rows))
    lines = [
        f"{'case':<{width}} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'× base':>7}"
        f" {'½ rate':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'CPU µs':>7}",
    ]
    for row in rows:
        half = row.half_rate
        errors = row.peak.errors + (half.errors if half else 0)
        half_columns = (
            f" {half.rps:>8.0f} {half.p50_ms:>8.1f} {half.p99_ms:>8.1f}" if half else " " * 27
        )
        lines.append(
            f"{row.case:<{width}} {row.peak.rps:>8.0f} {row.peak.p50_ms:>8.1f} {row.peak.p99_ms:>8.1f}"
            f" {row.ratio:>7.2f}{half_columns} {errors:>7} {row.peak.cpu_us:>7.0f}"
        )
    hello = next((row for row in rows if row.case == HELLO), None)
    if hello is not None:
        shares = ", ".join(
            f"{row.case} {row.peak.rps / hello.peak.rps:.2f}" for row in rows if row is not hello
        )
        lines.append(f"× {HELLO} (the server's limit): {shares}")
    for api, cost in auth_costs.items():
        lines.append(f"authentication costs {cost:+.1%} of the {api}'s requests per second")
    for api, cost in (metrics_costs or {}).items():
        lines.append(f"metrics cost {cost:+.1%} of the {api}'s requests per second (auth on)")
    for api, cost in metrics_cpu_costs(rows).items():
        lines.append(f"metrics cost {cost:+.1%} of the {api}'s CPU per request (auth on)")
    return "\n".join(lines)


def metrics_cpu_costs(rows: Sequence[Row]) -> dict[str, float]:
    """What counting adds to the CPU per request of the fetch and the update, from the
    twins' rows (none when they were not measured)."""
    by_case = {row.case: row.peak for row in rows}
    return {
        api: cpu_cost(by_case[f"{case}{UNMETERED}"], by_case[f"{case}{METERED}"])
        for api, case in (("fetch", FETCH_ON), ("update", UPDATE_ON))
        if f"{case}{METERED}" in by_case and f"{case}{UNMETERED}" in by_case
    }


def batch_lines(batch: BatchFigures) -> list[str]:
    alone, busy = batch.alone_seconds, batch.busy_seconds
    updates = batch.updates
    return [
        f"batch of {batch.rows:,} rows alone: {alone:.1f} s ({batch.rows / alone:,.0f} rows/s)",
        f"the same with single updates at {updates.rps:.0f} req/s meanwhile: {busy:.1f} s"
        f" ({batch.rows / busy:,.0f} rows/s); the updates: p50 {updates.p50_ms:.1f} ms,"
        f" p99 {updates.p99_ms:.1f} ms, {updates.requests} answered, {updates.errors} errors"
        + ("" if batch.overlapped else " (the batch finished before the updates did)"),
    ]


def verdict(met: bool, text: str) -> str:
    return f"{'met   ' if met else 'MISSED'} {text}"


def verdicts(
    rows: Sequence[Row],
    auth_costs: dict[str, float],
    batch: BatchFigures | None = None,
    database: str = "sqlite",
    metrics_costs: dict[str, float] | None = None,
) -> list[str]:
    """One line per target of ``database``: what was measured and whether it is met."""
    by_case = {row.case: row for row in rows}
    found = []
    for name, target in TARGET_RATIOS[database].items():
        ratio = by_case[name].ratio
        found.append(verdict(ratio >= target, f"{name}: {ratio:.2f}× baseline (target ≥ {target})"))
    for api in ("fetch", "fetch with an integration token"):
        cost = auth_costs.get(api)
        if cost is None:
            continue
        found.append(
            verdict(
                cost <= TARGET_AUTH_COST,
                f"authentication on the {api}: {cost:+.1%} (target ≤ {TARGET_AUTH_COST:.0%})",
            )
        )
    for api, cost in (metrics_costs or {}).items():
        found.append(
            verdict(
                cost <= TARGET_METRICS_COST,
                f"metrics on the {api}: {cost:+.1%} (target ≤ {TARGET_METRICS_COST:.0%})",
            )
        )
    for api, cost in metrics_cpu_costs(rows).items():
        found.append(
            verdict(
                cost <= TARGET_METRICS_COST,
                f"metrics on the {api}'s CPU per request: {cost:+.1%}"
                f" (target ≤ {TARGET_METRICS_COST:.0%})",
            )
        )
    for name, limit in TARGET_P99_AT_FULL_LOAD_MS.items():
        p99 = by_case[name].peak.p99_ms
        found.append(
            verdict(p99 < limit, f"{name}: p99 {p99:.1f} ms at full load (target < {limit:.0f} ms)")
        )
    for name, limit in TARGET_P99_AT_HALF_RATE_MS.items():
        half = by_case[name].half_rate
        if half is None:
            continue
        found.append(
            verdict(
                half.p99_ms < limit,
                f"{name}: p99 {half.p99_ms:.1f} ms at half rate (target < {limit:.0f} ms)",
            )
        )
    if batch is not None:
        limit = TARGET_P99_DURING_BATCH_MS
        found.append(
            verdict(
                batch.overlapped and batch.updates.p99_ms < limit,
                f"{UPDATE_ON} while a {batch.rows:,}-row batch is applied: p99"
                f" {batch.updates.p99_ms:.1f} ms (target < {limit:.0f} ms)",
            )
        )
    return found


def auth_cost(off: Figures, on: Figures) -> float:
    """The share of requests per second lost by turning authentication on."""
    return 1 - on.rps / off.rps


def cpu_cost(off: Figures, on: Figures) -> float:
    """The share of CPU per request added by turning something on (0 when not measured)."""
    return on.cpu_us / off.cpu_us - 1 if off.cpu_us > 0 else 0.0


def measure_case(
    wrk: str, port: int, paths_file: Path, token: str | None, options: argparse.Namespace
) -> tuple[Figures, Figures | None]:
    """The highest rate after a warm-up, then latency at half of it."""
    arguments = {"seconds": options.warmup, "connections": options.connections}
    run_wrk(wrk, port, paths_file, token, **arguments)
    arguments["seconds"] = options.duration
    peak = run_wrk(wrk, port, paths_file, token, **arguments)
    half = None
    if options.fixed_rate_duration > 0:
        half = run_fixed_rate(
            port, paths_file, token, rate=peak.rps / 2, seconds=options.fixed_rate_duration
        )
    return peak, half


def measure_baseline(
    wrk: str, directory: Path, options: argparse.Namespace, application: str = "bench.baseline_wsgi"
) -> tuple[Figures, Figures | None]:
    """The bare Django view (or another application answering its path) under the
    product's gunicorn configuration."""
    paths_file = directory / "paths-baseline.txt"
    paths_file.write_text(BASELINE_PATH + "\n")
    port = free_port()
    print(f"  {application} under the same gunicorn", flush=True)
    env = baseline_environment()
    log = directory / f"{application}.log"
    with gunicorn(env, port, application, BASELINE_PATH, log):
        return measure_case(wrk, port, paths_file, None, options)


@contextmanager
def product(env: dict[str, str], directory: Path) -> Iterator[int]:
    """gunicorn and one task worker as ``make run`` starts them; yields gunicorn's port.

    The worker starts first, and gunicorn once it polls: its start-up (imports and system
    checks, a few seconds of CPU) would otherwise fall into the first case's measurement.
    """
    port = free_port()
    worker_log = directory / "worker.log"
    worker = [sys.executable, "manage.py", "db_worker", "--no-reload", "--interval", "0.5"]
    with ExitStack() as stack:
        process = stack.enter_context(started(worker, env, worker_log))
        wait_for_line(process, worker_log, WORKER_READY, "the task worker")
        stack.enter_context(
            gunicorn(env, port, "targetadmin.wsgi", "/healthz", log=directory / "product.log")
        )
        yield port


def wait_for_line(
    process: subprocess.Popen[bytes], log: Path, text: str, name: str, seconds: float = 60
) -> None:
    """Wait until ``process`` (called ``name`` in errors) has written ``text`` to ``log``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{name} exited with status {process.returncode}; see {log}.")
        if text in log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    sys.exit(f"{name} did not write {text!r} within {seconds:.0f} s; see {log}.")


def measure_round(
    wrk: str,
    env: dict[str, str],
    directory: Path,
    files: dict[str, Path],
    all_cases: Sequence[Case],
    tokens: dict[str, str],
    options: argparse.Namespace,
    compared: Sequence[Case] = (),
    number: int = 1,
) -> tuple[list[Row], dict[str, float], dict[str, float]]:
    """The raw WSGI hello, the baseline, every case against the product; then, for the
    ``compared`` cases, two fresh servers alike but for metrics, off and on, in an order that
    swaps every other round (round ``number``); returns the rows, what authentication costs
    and what the metrics cost."""
    measured = {
        HELLO: measure_baseline(wrk, directory, options, "bench.hello_wsgi"),
        BASELINE: measure_baseline(wrk, directory, options),
    }
    twins = [
        (env, [metered(case, UNMETERED) for case in compared]),
        (metrics_environment(env), [metered(case) for case in compared]),
    ]
    servers = [(env, in_order_of(number, all_cases)), *(twins if number % 2 else twins[::-1])]
    for product_env, cases in servers:
        if not cases:
            continue
        with product(product_env, directory) as port:
            for case in cases:
                print(f"  {case.name}", flush=True)
                measured[case.name] = measure_case(
                    wrk, port, files[case.name], tokens.get(case.token), options
                )
    baseline = measured[BASELINE][0].rps
    rows = [Row(name, peak, peak.rps / baseline, half) for name, (peak, half) in measured.items()]
    costs = {
        api: auth_cost(measured[off][0], measured[on][0])
        for api, (off, on) in AUTH_COSTS.items()
        if off in measured and on in measured
    }
    metrics_costs = {
        api: auth_cost(measured[f"{case}{UNMETERED}"][0], measured[f"{case}{METERED}"][0])
        for api, case in (("fetch", FETCH_ON), ("update", UPDATE_ON))
        if f"{case}{METERED}" in measured
    }
    line = costs_line(costs, metrics_costs)
    for api, cost in metrics_cpu_costs(rows).items():
        line += f"; metrics {cost:+.1%} on the {api}'s CPU per request"
    print(f"  round {number}: {line}", flush=True)
    return rows, costs, metrics_costs


def costs_line(costs: dict[str, float], metrics_costs: dict[str, float]) -> str:
    """One round's costs on one line, for the spread between rounds."""
    parts = [f"authentication {cost:+.1%} on the {api}" for api, cost in costs.items()]
    parts += [f"metrics {cost:+.1%} on the {api}" for api, cost in metrics_costs.items()]
    return "; ".join(parts)


def http_request(port: int, method: str, path: str, body: Path | None = None) -> bytes:
    """``method path``, with the file at ``body`` streamed as a form body; the answer's body."""
    if body is None:
        return request(port, method, path)
    with body.open("rb") as handle:
        return request(
            port,
            method,
            path,
            handle,
            **{
                "Content-Type": "application/x-www-form-urlencoded",
                "Content-Length": str(body.stat().st_size),
            },
        )


def submit_batch(port: int, client: str, path: Path) -> str:
    """POST the batch file; returns the path of its status."""
    answer = http_request(port, "POST", f"/m2/{client}/v2/profile/batchUpdate", path)
    status_url = ElementTree.fromstring(answer).findtext("batchStatus") or ""  # noqa: S314
    return urlsplit(status_url)._replace(scheme="", netloc="").geturl()


def batch_status(port: int, status_path: str) -> ElementTree.Element:
    return ElementTree.fromstring(http_request(port, "GET", status_path))  # noqa: S314


def wait_for_batch(port: int, status_path: str, rows: int) -> None:
    detailed = status_path + "&showDetails=true"
    while (status := batch_status(port, detailed)).findtext("status") == "incomplete":
        time.sleep(0.1)
    if status.findtext("status") != "complete" or status.findtext("successfulUpdates") != str(rows):
        raise RuntimeError(f"batch did not complete cleanly: {ElementTree.tostring(status)!r}")


def measure_batch(
    port: int,
    directory: Path,
    rows: int,
    update_paths: Path,
    token: str,
    *,
    rate: float,
    seconds: int,
) -> BatchFigures:
    """The batch alone, then again (for another client) with single updates meanwhile."""
    path = directory / "batch.txt"
    batch_file.write(path, rows)
    print(f"  batch of {rows:,} rows alone", flush=True)
    began = time.perf_counter()
    wait_for_batch(port, submit_batch(port, BATCH_ALONE_CLIENT, path), rows)
    alone = time.perf_counter() - began
    print(f"  batch of {rows:,} rows with single updates at {rate:.0f} req/s", flush=True)
    began = time.perf_counter()
    status_path = submit_batch(port, BATCH_BUSY_CLIENT, path)
    updates = run_fixed_rate(port, update_paths, token, rate=rate, seconds=seconds)
    overlapped = batch_status(port, status_path).findtext("status") == "incomplete"
    wait_for_batch(port, status_path, rows)
    busy = time.perf_counter() - began
    return BatchFigures(rows, alone, busy, updates, overlapped)


def median_rows(rounds: Sequence[list[Row]]) -> list[Row]:
    """Per case, the median of each figure over the rounds (ratios taken within a round);
    a case is found by its name, whatever order a round measured it in."""

    def median_figures(figures: Sequence[Figures]) -> Figures:
        return Figures(
            rps=statistics.median(f.rps for f in figures),
            p50_ms=statistics.median(f.p50_ms for f in figures),
            p99_ms=statistics.median(f.p99_ms for f in figures),
            requests=sum(f.requests for f in figures),
            errors=sum(f.errors for f in figures),
            cpu_us=statistics.median(f.cpu_us for f in figures),
        )

    merged = []
    by_case = [{row.case: row for row in rows} for rows in rounds]
    for first in rounds[0]:
        same = [rows[first.case] for rows in by_case]
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


def load_average() -> str:
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


def database_url(options: argparse.Namespace, directory: Path) -> str:
    if options.database == "sqlite":
        return f"sqlite:///{directory / 'bench.sqlite3'}"
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit(
            "--database postgresql needs DATABASE_URL to name an empty PostgreSQL database "
            "(.ci/with-postgresql starts a throwaway one)."
        )
    return url


def parse_options(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.online", description="Benchmark of the online profile APIs."
    )
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
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
    parser.add_argument(
        "--batch-rows",
        type=int,
        default=500_000,
        help="rows of the batch applied under single updates (0 skips that part)",
    )
    parser.add_argument(
        "--batch-update-share",
        type=float,
        default=0.25,
        help="the single updates' rate during the batch, as a share of their highest rate",
    )
    parser.add_argument(
        "--metrics",
        choices=("both", "off", "on"),
        default="both",
        help="the product with /metrics off, on (METRICS_TOKEN set: every request counted),"
        " or off and then on again for the authenticated fetch and update, for what counting"
        " costs them",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    wrk = ensure_wrk()
    print(f"Online APIs benchmark on {machine()}", flush=True)
    print(f"load average at the start (1, 5, 15 min): {load_average()}", flush=True)
    batch: BatchFigures | None = None
    with tempfile.TemporaryDirectory(prefix="targetadmin-bench-") as name:
        directory = Path(name)
        env = product_environment(directory, database_url(options, directory))
        if options.metrics == "on":
            env = metrics_environment(env)
        server = gunicorn_settings(env)
        third_party_ids, tokens = seed(env, options.profiles)
        all_cases = product_cases(third_party_ids)
        files = {}
        for number, case in enumerate(all_cases):
            files[case.name] = directory / f"paths-{number}.txt"
            files[case.name].write_text("\n".join(case.paths) + "\n")
        compared = []
        if options.metrics == "both":
            compared = [c for c in all_cases if c.name in (FETCH_ON, UPDATE_ON)]
        for case in compared:
            for suffix in (UNMETERED, METERED):
                files[f"{case.name}{suffix}"] = files[case.name]
        rounds: list[list[Row]] = []
        round_costs: list[dict[str, float]] = []
        round_metrics_costs: list[dict[str, float]] = []
        for number in range(1, options.rounds + 1):
            print(f"Round {number} of {options.rounds}", flush=True)
            rows, costs, metrics_costs = measure_round(
                wrk, env, directory, files, all_cases, tokens, options, compared, number
            )
            rounds.append(rows)
            round_costs.append(costs)
            round_metrics_costs.append(metrics_costs)
        rows = median_rows(rounds)
        costs = {api: statistics.median(c[api] for c in round_costs) for api in round_costs[0]}
        metrics_costs = {
            api: statistics.median(c[api] for c in round_metrics_costs)
            for api in round_metrics_costs[0]
        }
        if options.batch_rows > 0:
            peak = next(row for row in rows if row.case == UPDATE_ON).peak.rps
            rate = peak * options.batch_update_share
            with product(env, directory) as port:
                batch = measure_batch(
                    port,
                    directory,
                    options.batch_rows,
                    files[UPDATE_ON],
                    tokens[CLIENT_TOKEN],
                    rate=rate,
                    seconds=max(options.fixed_rate_duration, options.duration),
                )
    print()
    print(
        f"{options.database}; gunicorn.conf.py: {server}, for the raw WSGI hello, the baseline"
        f" and the product alike;"
        f" wrk: {options.connections} connections, {options.duration} s per case after"
        f" {options.warmup} s warm-up; ½ rate: open-loop at half each case's req/s for"
        f" {options.fixed_rate_duration} s; {options.profiles} profiles per client"
        + (f"; medians of {options.rounds} rounds" if options.rounds > 1 else "")
        + f"; metrics {options.metrics}"
    )
    print(table(rows, costs, metrics_costs))
    if batch is not None:
        print("\n".join(batch_lines(batch)))
    print(f"load average at the end (1, 5, 15 min): {load_average()}")
    print()
    print("\n".join(verdicts(rows, costs, batch, options.database, metrics_costs)))
    failed = any(row.peak.errors or (row.half_rate and row.half_rate.errors) for row in rows)
    if failed or (batch is not None and batch.updates.errors):
        print("Some requests failed (see the errors column): the figures are not valid.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
