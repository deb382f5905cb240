"""Several hosts with nothing shared but PostgreSQL (docs/operations.md#batch-storage).

Two web servers and two workers, each with a ``TARGETADMIN_VAR_DIR`` of its own and
``BATCH_STORAGE=database``: batch files uploaded to the first web server are applied by the
workers and reported by the second, and a batch whose worker is killed (SIGKILL) mid-batch
is carried on by the other worker from its last committed chunk, every row applied once.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
from django.db import connection

from profiles.ingest.batches import Batch
from profiles.ingest.storage import BatchFileChunk
from profiles.models import Client, Profile
from tests.gunicorn_server import ROOT, Server, environment, gunicorn

SMALL_BATCHES, SMALL_ROWS = 3, 2_000
LARGE_ROWS = 30_000


def body(prefix: str, rows: int) -> bytes:
    lines = "".join(f"{prefix}-{n},{n}\n" for n in range(rows))
    return f"batch=thirdPartyId,n\n{lines}".encode()


def post_batch(server: Server, data: bytes) -> str:
    """Upload a batch file; returns the path of its status URL."""
    link = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    link.request(
        "POST",
        "/m2/demo/v2/profile/batchUpdate",
        body=data,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    answer = link.getresponse()
    content = answer.read()
    link.close()
    assert answer.status == 200, content
    url = ElementTree.fromstring(content).findtext("batchStatus") or ""  # noqa: S314
    return urlsplit(url)._replace(scheme="", netloc="").geturl()


def batch_status(server: Server, path: str) -> dict[str, str]:
    link = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    link.request("GET", f"{path}&showDetails=true")
    answer = link.getresponse()
    content = answer.read()
    link.close()
    assert answer.status == 200, content
    root = ElementTree.fromstring(content)  # noqa: S314
    return {child.tag: child.text or "" for child in root}


def until_finished(server: Server, path: str, seconds: float = 30) -> dict[str, str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        fields = batch_status(server, path)
        if fields["status"] != "incomplete":
            return fields
        time.sleep(0.1)
    raise AssertionError(f"the batch did not finish: {fields}")


@contextmanager
def worker(var_dir: Path, **settings: str) -> Iterator[subprocess.Popen[bytes]]:
    """``manage.py db_worker`` as ``make run`` starts it, in a process group of its own."""
    var_dir.mkdir(parents=True, exist_ok=True)
    with (var_dir / "worker.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--no-reload", "--interval", "0.1"],
            cwd=ROOT,
            env=environment(var_dir, **settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_hosts_sharing_only_postgresql_apply_report_and_resume_batches(tmp_path: Path) -> None:
    Client.objects.create(code="demo", name="Demo")
    url = "postgres://{USER}:{PASSWORD}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict)
    shared = {
        "DATABASE_URL": url,
        "BATCH_STORAGE": "database",
        "BATCH_STALL_SECONDS": "2",
        "WEB_CONCURRENCY": "1",
        "LOG_LEVEL": "WARNING",
    }
    hosts = {name: tmp_path / name for name in ("web-a", "web-b", "worker-a", "worker-b")}
    with ExitStack() as stack:
        web_a = stack.enter_context(gunicorn(hosts["web-a"], **shared))
        web_b = stack.enter_context(gunicorn(hosts["web-b"], **shared))
        # Small chunks, so that the large batch is still running when its worker is killed.
        first = stack.enter_context(worker(hosts["worker-a"], BATCH_CHUNK_ROWS="100", **shared))
        with worker(hosts["worker-b"], **shared):
            small = [post_batch(web_a, body(f"s{n}", SMALL_ROWS)) for n in range(SMALL_BATCHES)]
            for path in small:
                done = until_finished(web_b, path)
                assert (done["status"], done["consumedCount"], done["successfulUpdates"]) == (
                    "complete",
                    str(SMALL_ROWS),
                    str(SMALL_ROWS),
                )
        # Only the first worker is left to take the large batch; it dies part-way through.
        large = post_batch(web_a, body("l", LARGE_ROWS))
        deadline = time.monotonic() + 30
        while not Batch.objects.filter(consumed_count__gt=0).exclude(status="complete").exists():
            assert time.monotonic() < deadline, "the first worker did not start the batch"
            time.sleep(0.02)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = batch_status(web_b, large)
        assert killed_at["status"] == "incomplete"
        assert 0 < int(killed_at["consumedCount"]) < LARGE_ROWS

        # The other worker, started anew, takes the batch once the status read finds it stalled.
        with worker(hosts["worker-b"], **shared):
            done = until_finished(web_b, large)

    assert (
        done["status"],
        done["batchSize"],
        done["consumedCount"],
        done["successfulUpdates"],
        done["failedUpdates"],
    ) == ("complete", str(LARGE_ROWS), str(LARGE_ROWS), str(LARGE_ROWS), "0")
    assert Batch.objects.get(pk=done["batchId"]).attempts == 2
    assert Profile.objects.filter(third_party_id__startswith="l-").count() == LARGE_ROWS
    assert Profile.objects.count() == SMALL_BATCHES * SMALL_ROWS + LARGE_ROWS
    assert not BatchFileChunk.objects.exists()  # every finished batch's file is gone
    for var_dir in hosts.values():  # and no host kept one of its own
        assert not list((var_dir / "batches").glob("*"))
