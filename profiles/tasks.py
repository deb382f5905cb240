"""Background work for batches, run by ``manage.py db_worker`` (django-tasks-db).

This module stays at the top of the app because queued tasks name their function by its
dotted path (``profiles.tasks.process_batch``): moving it would orphan queued work.

A worker that dies mid-batch leaves its task marked running and the batch without
progress. :func:`resume_stalled` finds such batches (no progress for
``BATCH_STALL_SECONDS`` and no task waiting in the queue) and enqueues them again, up to
``BATCH_MAX_ATTEMPTS`` attempts; after that, or when the batch's file is gone, the batch is
``stuck``. It runs from the ``resume_batches`` command (``make run`` calls it before the
worker starts) and whenever someone reads the status of a stalled batch.

A task worker beats a heartbeat for the metrics (:func:`start_heartbeat`,
docs/operations.md#metrics).
"""

from __future__ import annotations

import threading
from datetime import datetime

from django.conf import settings
from django.db.models import F
from django.tasks import TaskResultStatus, default_task_backend, task
from django.tasks.exceptions import TaskResultDoesNotExist
from django.utils import timezone

from profiles.ingest import processing
from profiles.ingest.batches import Batch, Status
from profiles.rules import metrics


@task
def process_batch(batch_id: str) -> None:
    processing.run(batch_id)


def enqueue(batch: Batch) -> None:
    """Hand the batch to a worker, counting the attempt first."""
    Batch.objects.filter(pk=batch.pk).update(attempts=F("attempts") + 1, updated_at=timezone.now())
    result = process_batch.enqueue(batch.pk)
    Batch.objects.filter(pk=batch.pk).update(task_id=result.id)
    batch.refresh_from_db()


def _task_is_waiting(task_id: str) -> bool:
    """Whether the batch's task still sits in the queue (not yet picked up by a worker)."""
    if not task_id:
        return False
    try:
        result = default_task_backend.get_result(task_id)
    except (NotImplementedError, TaskResultDoesNotExist):
        return False
    return result.status == TaskResultStatus.READY


def resume_if_stalled(batch: Batch, now: datetime | None = None) -> Batch:
    """Enqueue a stalled batch again, or mark it stuck; returns it refreshed."""
    now = now or timezone.now()
    stalled = Batch.objects.stalled(now).filter(pk=batch.pk).first()
    if stalled is None:
        return batch
    batch = stalled
    if _task_is_waiting(batch.task_id):
        return batch
    # Claim the rescue, so two readers of one stalled batch do not both enqueue it.
    claimed = Batch.objects.filter(pk=batch.pk, updated_at=batch.updated_at).update(updated_at=now)
    if not claimed:
        batch.refresh_from_db()
        return batch
    if batch.attempts >= settings.BATCH_MAX_ATTEMPTS or not batch.has_file:
        batch.finish(Status.STUCK)
    else:
        enqueue(batch)
    batch.refresh_from_db()
    return batch


def resume_stalled(now: datetime | None = None) -> list[Batch]:
    now = now or timezone.now()
    return [resume_if_stalled(batch, now) for batch in Batch.objects.stalled(now)]


def _beat(stop: threading.Event) -> None:
    while not stop.is_set():
        metrics.beat()
        stop.wait(settings.WORKER_HEARTBEAT_SECONDS)


def start_heartbeat(stop: threading.Event | None = None) -> threading.Thread | None:
    """Beat the task worker's heartbeat from a thread of this process until it ends (or
    ``stop`` is set); none while metrics are off."""
    if not metrics.recording:
        return None
    beating = threading.Thread(
        target=_beat, args=(stop or threading.Event(),), name="heartbeat", daemon=True
    )
    beating.start()
    return beating
