"""Apply one batch file as the worker does, in a process of its own, and report its memory.

    python -m tests.batch_worker_probe FILE ROWS

``FILE`` must lie in ``BATCH_DIR`` (with ``BATCH_STORAGE=database`` it is first copied into the
database's storage, streamed, before the memory is measured); the database is the one the environment names
(``DATABASE_URL``, or the SQLite file under ``TARGETADMIN_VAR_DIR``), already migrated. The
probe creates a client and a v2 batch for the file, runs ``processing.run`` (what
``manage.py db_worker`` runs for a batch) and prints one JSON object: the batch's counts
the seconds (wall and CPU) it took, and the process's peak RSS (``VmHWM``) and RSS (``VmRSS``) in KB, before and after;
and the CPU seconds and peak RSS of the batch's parser process (its child, ended by then).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path


def memory_kb() -> dict[str, int]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            fields[name] = int(value.split()[0])
    return fields


def main(path: Path, rows: int) -> dict[str, object]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "targetadmin.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.files import File

    from profiles.access.models import Client
    from profiles.ingest import processing
    from profiles.ingest.batches import ApiVersion, Batch
    from profiles.ingest.batchfile import PREFIX, parse_header
    from profiles.ingest.storage import batch_files

    assert path.parent.resolve() == Path(settings.BATCH_DIR).resolve(), "FILE not in BATCH_DIR"
    if settings.BATCH_STORAGE != "directory":
        with path.open("rb") as handle:
            batch_files().save(path.name, File(handle))
    with path.open("rb") as handle:
        first = handle.readline()
    header = parse_header(first.removeprefix(PREFIX).rstrip(b"\r\n"))
    # A client of its own: each file is applied to profiles not there yet.
    client = Client.objects.create(code=f"probe-{Client.objects.count() + 1}", name="Probe")
    batch = Batch.objects.create(
        id=f"probe-{path.stem}-{os.getpid()}",
        client=client,
        api_version=ApiVersion.V2,
        key_kind=header.kind,
        attribute_names=list(header.names),
        create_missing=True,
        batch_size=rows,
        file_name=path.name,
        resume_offset=len(first),
        resume_position=2,  # line 1 is the header
    )
    before = memory_kb()
    started, cpu_started = time.perf_counter(), time.process_time()
    processing.run(batch.pk)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    after = memory_kb()
    parser = resource.getrusage(resource.RUSAGE_CHILDREN)
    batch.refresh_from_db()
    return {
        "status": batch.status,
        "consumed": batch.consumed_count,
        "successful": batch.successful_updates,
        "failed": batch.failed_updates,
        "chunks": batch.chunks_done,
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "peak_kb_before": before["VmHWM"],
        "rss_kb_before": before["VmRSS"],
        "peak_kb": after["VmHWM"],
        "rss_kb_after": after["VmRSS"],
        "parser_cpu_seconds": round(parser.ru_utime + parser.ru_stime, 3),
        "parser_peak_kb": parser.ru_maxrss,
    }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), int(sys.argv[2]))))
