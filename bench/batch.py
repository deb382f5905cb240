"""``make bench-batch`` (part of ``make bench``): the batch file path end to end against SQLite alone.

For a 500,000-row (~50 MB) and a 50,000-row v2 file keyed by thirdPartyId it measures:

- engine: the rows, encoded before the clock starts, upserted into a fresh SQLite file with
  plain ``sqlite3`` (``bench/batch_raw.py``): the reference to chase;
- naive: a stdlib script parsing the file and running the same upserts;
- product: a fresh database, gunicorn and one ``db_worker`` started as ``make run`` starts
  them; the file POSTed to ``/m2/bench/v2/profile/batchUpdate``; the clock stops when
  ``batchStatus`` says ``complete`` with every row successful;

and prints the times, each ratio (reference / product), the stages (upload; parse, merge and
bookkeeping as the worker logs them; the rest is waiting for the worker and polling), the
peak RSS (``VmHWM``) of the worker and of the gunicorn worker that took the upload, and the
rows lost or wrong when every profile of the batch is read back from the database. The
product runs twice per size: batch files kept in a directory, then in the database
(``BATCH_STORAGE=database``, docs/operations.md#batch-storage), and both are printed side by side.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

from bench import batch_file as generate
from bench import batch_raw as raw

ROOT = Path(__file__).resolve().parent.parent

# The interpreter running the bench (the project's virtualenv under ``make``).
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
# BENCH_BATCH_SIZES=20000,5000 for a quick run (the first is compared with the second for memory).
SIZES = tuple(int(n) for n in os.environ.get("BENCH_BATCH_SIZES", "500000,50000").split(","))


@dataclass
class Run:
    seconds: float
    upload_seconds: float
    worker_peak_kb: int
    web_peak_kb: int
    stages: dict[str, float]  # parse, merge, bookkeeping as the worker logged them
    lost: int | None = None  # rows of the file not found when read back (None: not checked)
    wrong: int | None = None  # found, with other values


@dataclass
class Measure:
    rows: int
    raw_seconds: float
    product_seconds: float
    upload_seconds: float
    worker_peak_kb: int
    web_peak_kb: int


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def wait_for(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start")


def request(port: int, method: str, path: str, body: object = None, **headers: str) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    connection.request(method, path, body=body, headers=headers)  # type: ignore[arg-type]
    response = connection.getresponse()
    content = response.read()
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"{method} {path}: {response.status} {content[:300]!r}")
    return content


def run_batch(
    port: int, body: object, rows: int, *, size: int | None = None, since: float | None = None
) -> float:
    """POST a batch file and poll its status until complete; returns the upload's seconds."""
    started = time.perf_counter() if since is None else since
    length = len(body) if isinstance(body, bytes) else size
    answer = request(
        port,
        "POST",
        "/m2/bench/v2/profile/batchUpdate",
        body,
        **{
            "Content-Type": "application/x-www-form-urlencoded",
            "Content-Length": str(length),
        },
    )
    uploaded = time.perf_counter() - started
    status_url = ElementTree.fromstring(answer).findtext("batchStatus") or ""  # noqa: S314
    status_path = urlsplit(status_url)._replace(scheme="", netloc="").geturl()
    while True:
        status = ElementTree.fromstring(  # noqa: S314
            request(port, "GET", status_path + "&showDetails=true")
        )
        if status.findtext("status") != "incomplete":
            break
        time.sleep(0.25)
    if status.findtext("status") != "complete" or status.findtext("successfulUpdates") != str(rows):
        raise RuntimeError(f"batch did not complete cleanly: {ElementTree.tostring(status)!r}")
    return uploaded


_STAGES = re.compile(r"parse ([0-9.]+) s, merge ([0-9.]+) s, bookkeeping ([0-9.]+) s")


def stages_logged(log: Path) -> dict[str, float]:
    """The last batch's stage times from the worker's log."""
    found = _STAGES.findall(log.read_text(errors="replace"))
    if not found:
        return {}
    return dict(zip(("parse", "merge", "bookkeeping"), map(float, found[-1]), strict=True))


def reread(database: Path, batch_file: Path) -> tuple[int, int]:
    """Rows of the file lost and wrong: every key's stored values against the file's."""
    want = raw.expected(batch_file)
    connection = sqlite3.connect(database)
    stored = dict(
        connection.execute(
            "SELECT third_party_id, attributes FROM profiles_profile"
            " WHERE client_id = (SELECT id FROM profiles_client WHERE code = 'bench')"
        )
    )
    connection.close()
    lost = wrong = 0
    for key, values in want.items():
        text = stored.get(key)
        if text is None:
            lost += 1
            continue
        got = {name: cell["value"] for name, cell in json.loads(text).items()}
        wrong += got != values
    return lost, wrong


@contextmanager
def batch_files(
    sizes: tuple[int, ...] | list[int], label: str
) -> Iterator[Iterator[tuple[int, Path]]]:
    """Each size's generated v2 file in a temporary folder (``rows``, ``path``), announced as
    it is measured; the folder and everything in it go when the block ends."""
    work = Path(tempfile.mkdtemp(prefix="targetadmin-bench-"))

    def each() -> Iterator[tuple[int, Path]]:
        for rows in sizes:
            batch_file = work / f"batch-{rows}.txt"
            size = generate.write(batch_file, rows)
            print(f"{rows:,} rows, {size / 1e6:.1f} MB{label}: measuring…", flush=True)
            yield rows, batch_file

    try:
        yield each()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def product_run(
    batch_file: Path, rows: int, database_url: str | None = None, storage: str = "directory"
) -> Run:
    """The product end to end, its stages and (on SQLite) what it stored, read back.

    On a fresh SQLite file beside ``batch_file``, or on the (fresh) database ``database_url``
    names; batch files kept where ``storage`` (``BATCH_STORAGE``) says.
    """
    work = batch_file.parent
    var = work / "var"
    shutil.rmtree(var, ignore_errors=True)
    env = {
        **os.environ,
        "TARGETADMIN_VAR_DIR": str(var),
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "BATCH_STORAGE": storage,
    }
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    manage = [PYTHON, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], check=True, env=env, cwd=ROOT)
    create = "from profiles.models import Client; Client.objects.create(code='bench', name='Bench')"
    subprocess.run([*manage, "shell", "-v", "0", "-c", create], check=True, env=env, cwd=ROOT)
    port = free_port()
    web = subprocess.Popen(
        [GUNICORN, "targetadmin.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        env=env,
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )
    log = work / "worker.log"
    with log.open("wb") as log_file:
        worker = subprocess.Popen(
            [*manage, "db_worker", "--no-reload", "--no-startup-delay", "--interval", "0.1"],
            env={**env, "LOG_LEVEL": "INFO"},  # the stage times are an INFO line
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    try:
        wait_for(port)
        # One small batch first, so imports and connections are warm in both processes.
        run_batch(port, b"batch=thirdPartyId,warm\nwarm-up,1\n", 1)
        started = time.perf_counter()
        with batch_file.open("rb") as body:
            uploaded = run_batch(port, body, rows, size=batch_file.stat().st_size, since=started)
        elapsed = time.perf_counter() - started
        web_peak = max(peak_rss_kb(pid) for pid in children(web.pid))
        result = Run(elapsed, uploaded, peak_rss_kb(worker.pid), web_peak, {})
    finally:
        for process in (web, worker):
            process.terminate()
        for process in (web, worker):
            process.wait(timeout=60)
    result.stages = stages_logged(log)
    if not database_url:
        result.lost, result.wrong = reread(var / "targetadmin.sqlite3", batch_file)
    return result


def print_storages(runs: list[tuple[int, Run, Run]]) -> None:
    """The product with batch files in a directory and in the database, side by side."""
    print("\nbatch files kept in a directory / in the database (BATCH_STORAGE=database)")
    print(
        f"{'rows':>9} {'directory s':>12} {'upload s':>9} {'database s':>11} {'upload s':>9}"
        f" {'ratio':>6} {'worker MB':>10} {'web MB':>7}"
    )
    for rows, directory, database in runs:
        print(
            f"{rows:>9,} {directory.seconds:>12.2f} {directory.upload_seconds:>9.2f}"
            f" {database.seconds:>11.2f} {database.upload_seconds:>9.2f}"
            f" {directory.seconds / database.seconds:>6.2f}"
            f" {database.worker_peak_kb / 1024:>10.1f} {database.web_peak_kb / 1024:>7.1f}"
        )


def main() -> None:
    results: list[tuple[int, float, float, Run]] = []
    in_database: list[tuple[int, Run, Run]] = []
    with batch_files(SIZES, "") as files:
        for rows, batch_file in files:
            engine = raw.engine_alone(batch_file, batch_file.parent / "raw.sqlite3")
            naive = raw.run(batch_file, batch_file.parent / "raw.sqlite3")
            run = product_run(batch_file, rows)
            results.append((rows, engine, naive, run))
            in_database.append((rows, run, product_run(batch_file, rows, storage="database")))
    print("\nSQLite: engine = plain sqlite3 upserts of pre-encoded rows; naive = a stdlib script;")
    print("product = upload to complete; ratio = reference s / product s (1.0 = as fast)")
    print(
        f"{'rows':>9} {'engine s':>9} {'naive s':>8} {'product s':>10} {'rows/s':>8}"
        f" {'vs engine':>10} {'vs naive':>9} {'worker MB':>10} {'web MB':>7} {'lost':>5} {'wrong':>6}"
    )
    for rows, engine, naive, run in results:
        print(
            f"{rows:>9,} {engine:>9.2f} {naive:>8.2f} {run.seconds:>10.2f}"
            f" {rows / run.seconds:>8,.0f} {engine / run.seconds:>10.2f} {naive / run.seconds:>9.2f}"
            f" {run.worker_peak_kb / 1024:>10.1f} {run.web_peak_kb / 1024:>7.1f}"
            f" {run.lost!s:>5} {run.wrong!s:>6}"
        )
    print(
        f"\n{'rows':>9} {'upload s':>9} {'parse s':>8} {'merge s':>8} {'bookkeeping s':>14}"
        f" {'waiting+polling s':>18}"
    )
    for rows, _, _, run in results:
        parse, merge, books = (
            run.stages.get(k, float("nan")) for k in ("parse", "merge", "bookkeeping")
        )
        rest = run.seconds - run.upload_seconds - parse - merge - books
        print(
            f"{rows:>9,} {run.upload_seconds:>9.2f} {parse:>8.2f} {merge:>8.2f} {books:>14.2f}"
            f" {rest:>18.2f}"
        )
    print_storages(in_database)
    big, small = results[0][3], results[1][3]
    growth = big.worker_peak_kb / small.worker_peak_kb - 1
    print(f"\nworker peak RSS, {results[0][0]:,} vs {results[1][0]:,} rows: {growth:+.1%}")
    lost = sum(run.lost or 0 for _, *runs in in_database for run in runs)
    wrong = sum(run.wrong or 0 for _, *runs in in_database for run in runs)
    print(f"read back every profile of each batch: {lost} lost, {wrong} wrong")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"load average at the end (1, 5, 15 min) on {os.cpu_count()} CPUs: {load}")


if __name__ == "__main__":
    main()
