"""``make bench-batch`` (part of ``make bench``): the batch file path end to end against the raw SQLite limit.

For a 500,000-row (~50 MB) and a 50,000-row v2 file keyed by thirdPartyId it measures:

- raw: the rows merged into a fresh SQLite file with plain ``sqlite3`` (``bench/batch_raw.py``);
- product: a fresh database, gunicorn and one ``db_worker`` started as ``make run`` starts
  them; the file POSTed to ``/m2/bench/v2/profile/batchUpdate``; the clock stops when
  ``batchStatus`` says ``complete`` with every row successful;

and prints both times, rows per second, their ratio and the peak RSS (``VmHWM``) of the
worker and of the gunicorn worker that took the upload.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

from bench import batch_file as generate
from bench import batch_raw as raw

ROOT = Path(__file__).resolve().parent.parent

PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
SIZES = (500_000, 50_000)


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


def product(
    batch_file: Path, rows: int, work: Path, database_url: str | None = None
) -> tuple[float, float, int, int]:
    """Seconds to complete, seconds to upload, worker and web peak RSS in KB.

    On a fresh SQLite file in ``work``, or on the (fresh) database ``database_url`` names.
    """
    var = work / "var"
    shutil.rmtree(var, ignore_errors=True)
    env = {**os.environ, "TARGETADMIN_VAR_DIR": str(var), "DEBUG": "false", "LOG_LEVEL": "WARNING"}
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    manage = [PYTHON, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], check=True, env=env, cwd=ROOT)
    create = "from profiles.models import Client; Client.objects.create(code='bench', name='Bench')"
    subprocess.run([*manage, "shell", "-c", create], check=True, env=env, cwd=ROOT)
    port = free_port()
    web = subprocess.Popen(
        [GUNICORN, "targetadmin.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        env=env,
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        [*manage, "db_worker", "--no-reload", "--no-startup-delay", "--interval", "0.1", "-v", "0"],
        env=env,
        cwd=ROOT,
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
        return elapsed, uploaded, peak_rss_kb(worker.pid), web_peak
    finally:
        for process in (web, worker):
            process.terminate()
        for process in (web, worker):
            process.wait(timeout=60)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="targetadmin-bench-"))
    measures = []
    try:
        for rows in SIZES:
            batch_file = work / f"batch-{rows}.txt"
            size = generate.write(batch_file, rows)
            print(f"{rows:,} rows, {size / 1e6:.1f} MB: measuring…", flush=True)
            raw_seconds = raw.run(batch_file, work / "raw.sqlite3")
            seconds, uploaded, worker_kb, web_kb = product(batch_file, rows, work)
            measures.append(Measure(rows, raw_seconds, seconds, uploaded, worker_kb, web_kb))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(
        f"{'rows':>9} {'raw s':>7} {'raw rows/s':>11} {'product s':>10} {'upload s':>9}"
        f" {'rows/s':>9} {'ratio':>6} {'worker MB':>10} {'web MB':>7}"
    )
    for m in measures:
        print(
            f"{m.rows:>9,} {m.raw_seconds:>7.2f} {m.rows / m.raw_seconds:>11,.0f}"
            f" {m.product_seconds:>10.2f} {m.upload_seconds:>9.2f}"
            f" {m.rows / m.product_seconds:>9,.0f} {m.raw_seconds / m.product_seconds:>6.2f}"
            f" {m.worker_peak_kb / 1024:>10.1f} {m.web_peak_kb / 1024:>7.1f}"
        )
    big, small = measures[0], measures[1]
    growth = big.worker_peak_kb / small.worker_peak_kb - 1
    print(f"\nworker peak RSS, 500k vs 50k: {growth:+.1%}")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"load average at the end (1, 5, 15 min) on {os.cpu_count()} CPUs: {load}")


if __name__ == "__main__":
    main()
