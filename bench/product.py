"""The product end to end for the batch benchmarks (``bench/batch.py`` on SQLite,
``bench/batch_postgresql.py`` on PostgreSQL): a fresh database, gunicorn and one ``db_worker``
started as ``make run`` starts them, a generated batch file POSTed to ``batchUpdate`` and
``batchStatus`` polled until complete; the times, the stages the worker logs, the peak RSS of
both processes and, on SQLite, every profile read back."""

from __future__ import annotations

import json
import os
import re
import shutil
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
from bench.loopback import free_port, request, wait_until_listening

ROOT = Path(__file__).resolve().parent.parent

# The interpreter running the bench (the project's virtualenv under ``make``).
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
# BENCH_BATCH_SIZES=20000,5000 for a quick run (the first is compared with the second for memory).
SIZES = tuple(int(n) for n in os.environ.get("BENCH_BATCH_SIZES", "500000,50000").split(","))


def worker_environment(var_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a task worker whose local state is ``var_dir``: the caller's own,
    without its batch and database settings, on targetadmin's settings, plus ``settings``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("BATCH_", "DATABASE_URL"))
    }
    return env | {
        "DJANGO_SETTINGS_MODULE": "targetadmin.settings",
        "TARGETADMIN_VAR_DIR": str(var_dir),
        "LOG_LEVEL": "WARNING",
        **settings,
    }


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
        wait_until_listening(port, web, worker, seconds=30)
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
