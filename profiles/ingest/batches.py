"""Batches: one bulk submission each (docs/concepts.md#batches), its progress and its failed rows.

A batch's rows live in a stored file (the storage ``batches``, docs/operations.md#batch-storage)
until the batch completes. The worker
applies it chunk by chunk; each chunk's profile changes, failed rows and the batch's new
counts and resume point commit in one transaction, so a worker killed mid-batch leaves the
batch exactly at its last committed chunk and the next attempt carries on from there.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from functools import partial
from itertools import islice
from typing import ClassVar

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone

from profiles.access.models import Client
from profiles.ingest.pipeline import Outcome
from profiles.ingest.storage import batch_files
from profiles.rules import metrics
from profiles.rules.limits import MAX_BATCH_ID_LENGTH, MAX_ID_LENGTH, MAX_IDEMPOTENCY_KEY_LENGTH
from profiles.store import KeyKind, reads
from profiles.store.keys import shown_storable


class ApiVersion(models.TextChoices):
    V1 = "v1", "Batch file v1 (update only)"
    V2 = "v2", "Batch file v2 (creates profiles)"
    JSON = "json", "JSON bulk"


class Status(models.TextChoices):
    INCOMPLETE = "incomplete", "Incomplete"
    COMPLETE = "complete", "Complete"
    STUCK = "stuck", "Stuck"


FAILURES_PER_INSERT = 1_000


def new_batch_id(client: Client, now: datetime) -> str:
    """``<client>-<epoch ms>-<8 digits>``, the shape of Adobe's batch ids."""
    return f"{client.code}-{int(now.timestamp() * 1000)}-{secrets.randbelow(10**8):08d}"


class BatchQuerySet(models.QuerySet["Batch"]):
    def with_idempotency_key(self, client: Client, key: str, now: datetime) -> Batch | None:
        """The client's batch submitted with ``key`` within the idempotency window."""
        since = now - timedelta(hours=settings.BATCH_IDEMPOTENCY_HOURS)
        return (
            self.filter(
                client=client,
                idempotency_key=key,
                idempotency_key_expired=False,
                created_at__gte=since,
            )
            .order_by("created_at")
            .first()
        )

    def expire_idempotency_key(self, client: Client, key: str, now: datetime) -> None:
        """Let ``key`` name a new batch once the batch it names is past the window.

        The database holds each live key once per client (``batch_idempotency_key_once``);
        the old batch keeps its key as sent, marked expired.
        """
        since = now - timedelta(hours=settings.BATCH_IDEMPOTENCY_HOURS)
        self.filter(
            client=client, idempotency_key=key, idempotency_key_expired=False, created_at__lt=since
        ).update(idempotency_key_expired=True)

    def retry_after(self, client: Client, now: datetime) -> int | None:
        """Seconds until the client may submit again, or ``None`` when it may now."""
        window = now - timedelta(minutes=1)
        recent = list(
            self.filter(client=client, created_at__gt=window)
            .order_by("-created_at")
            .values_list("created_at", flat=True)[: settings.BULK_SUBMISSIONS_PER_MINUTE]
        )
        if len(recent) < settings.BULK_SUBMISSIONS_PER_MINUTE:
            return None
        oldest = recent[-1]
        return max(1, int((oldest - window).total_seconds()) + 1)

    def stalled(self, now: datetime) -> BatchQuerySet:
        since = now - timedelta(seconds=settings.BATCH_STALL_SECONDS)
        return self.filter(status=Status.INCOMPLETE, updated_at__lt=since)

    def expired(self, now: datetime) -> BatchQuerySet:
        return self.filter(created_at__lt=now - timedelta(days=settings.BATCH_RETENTION_DAYS))


class Batch(models.Model):
    id = models.CharField(primary_key=True, max_length=MAX_BATCH_ID_LENGTH)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="batches")
    api_version = models.CharField(max_length=4, choices=ApiVersion.choices)
    key_kind = models.CharField(
        max_length=16,
        choices=[(kind.value, kind.value) for kind in KeyKind],
        blank=True,
        help_text="The batch file's id column; blank for JSON batches (each row names its own).",
    )
    attribute_names = models.JSONField(default=list, blank=True)
    create_missing = models.BooleanField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.INCOMPLETE)
    batch_size = models.PositiveIntegerField()
    consumed_count = models.PositiveIntegerField(default=0)
    successful_updates = models.PositiveIntegerField(default=0)
    profiles_not_found = models.PositiveIntegerField(default=0)
    failed_updates = models.PositiveIntegerField(default=0)
    idempotency_key = models.CharField(max_length=MAX_IDEMPOTENCY_KEY_LENGTH, blank=True)
    idempotency_key_expired = models.BooleanField(
        default=False,
        help_text="The key was sent again after the idempotency window and names a newer batch.",
    )
    file_name = models.CharField(max_length=200, blank=True)
    resume_offset = models.BigIntegerField(
        default=0, help_text="Byte offset of the first row not yet applied."
    )
    resume_position = models.PositiveIntegerField(
        default=0, help_text="Line number (or index) of the first row not yet applied."
    )
    chunks_done = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    task_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[BatchQuerySet] = BatchQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        verbose_name_plural = "batches"
        ordering = ("-created_at",)
        indexes = (
            models.Index(fields=("client", "-created_at"), name="batch_client_recent"),
            models.Index(fields=("client", "idempotency_key"), name="batch_idempotency"),
            models.Index(fields=("status", "updated_at"), name="batch_progress"),
        )
        constraints = (
            # One batch per live key and client, however many submissions race for it.
            models.UniqueConstraint(
                fields=("client", "idempotency_key"),
                condition=~Q(idempotency_key="") & Q(idempotency_key_expired=False),
                name="batch_idempotency_key_once",
            ),
        )

    def __str__(self) -> str:
        return self.id

    @property
    def has_file(self) -> bool:
        """Whether the batch's stored file is still there for a worker to read."""
        return bool(self.file_name) and batch_files().exists(self.file_name)

    @property
    def is_finished(self) -> bool:
        return self.status != Status.INCOMPLETE

    @property
    def percent_done(self) -> int:
        if self.status == Status.COMPLETE or not self.batch_size:
            return 100
        return min(100, self.consumed_count * 100 // self.batch_size)

    def record_chunk(
        self, outcome: Outcome, *, start_offset: int, end_offset: int, next_position: int
    ) -> bool:
        """Save one applied chunk's counts, failures and resume point; call in its transaction.

        The update only matches while the batch still stands at ``start_offset``: when
        another worker already recorded this chunk it returns ``False`` and the caller
        must roll back.
        """
        # On the driver's own cursor, with the chunk's merge: the ORM would build and
        # compile this statement once per chunk of every batch.
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        params = (
            *(end_offset, next_position, outcome.consumed, outcome.successful),
            *(outcome.not_found, len(outcome.failures), now),
            *(self.pk, Status.INCOMPLETE.value, start_offset),
        )
        with reads.execute(_RECORD_CHUNK, params) as cursor:
            claimed = cursor.rowcount
        if not claimed:
            return False
        transaction.on_commit(
            partial(
                metrics.count_rows, outcome.successful, outcome.not_found, len(outcome.failures)
            )
        )
        # A thousand failed rows at a time: a chunk of 10,000 failed rows does not build
        # 10,000 model instances and one statement holding them all.
        failures = iter(outcome.failures)
        while part := list(islice(failures, FAILURES_PER_INSERT)):
            BatchFailure.objects.bulk_create(
                BatchFailure(
                    batch_id=self.pk,
                    position=failure.position,
                    profile_id=storable(failure.profile_id, BatchFailure.ID_LENGTH),
                    code=failure.code,
                    message=storable(failure.message, BatchFailure.MESSAGE_LENGTH),
                )
                for failure in part
            )
        self.resume_offset = end_offset
        self.resume_position = next_position
        return True

    def finish(self, status: Status = Status.COMPLETE) -> None:
        now = timezone.now()
        finished = Batch.objects.filter(pk=self.pk, status=Status.INCOMPLETE).update(
            status=status, finished_at=now, updated_at=now
        )
        if finished:  # once a batch, whichever worker gets here first
            seconds = (now - self.created_at).total_seconds()
            transaction.on_commit(partial(metrics.count_batch_finished, status.value, seconds))
        self.refresh_from_db()
        if status == Status.COMPLETE:
            self.delete_file()

    def start_attempt(self, task_id: str) -> None:
        self.attempts += 1
        self.task_id = task_id
        self.updated_at = timezone.now()
        self.save(update_fields=["attempts", "task_id", "updated_at"])

    def delete_file(self) -> None:
        if self.file_name:
            batch_files().delete(self.file_name)


def stray_files(before: datetime) -> list[str]:
    """Stored batch files that no batch names and that were written before ``before``.

    An upload whose web process died mid-way leaves its file without a batch; one still
    arriving has none yet either, hence ``before``. A file's name is its batch's id, which
    carries the time it was made (``new_batch_id``).
    """
    try:
        names = batch_files().listdir("")[1]
    except FileNotFoundError:  # a directory not made yet
        return []
    named = set(Batch.objects.filter(file_name__in=names).values_list("file_name", flat=True))
    cutoff = before.timestamp() * 1000
    stray = []
    for name in names:
        try:
            made = int(name.rsplit(".", 1)[0].rsplit("-", 2)[-2])
        except (IndexError, ValueError):
            continue  # not a batch file
        if made < cutoff and name not in named:
            stray.append(name)
    return stray


def storable(text: str, length: int) -> str:
    """``text`` cut to ``length``, with NUL and lone surrogates shown as U+FFFD.

    A failed row is recorded as it was sent, and a row can fail precisely for holding one.
    """
    return shown_storable(text[:length])


# ``Batch.record_chunk``'s claim of its chunk: counts and resume point, only while the batch
# still stands where the chunk starts.
_RECORD_CHUNK = f"""
UPDATE {Batch._meta.db_table} SET
    resume_offset = %s, resume_position = %s, chunks_done = chunks_done + 1,
    consumed_count = consumed_count + %s, successful_updates = successful_updates + %s,
    profiles_not_found = profiles_not_found + %s, failed_updates = failed_updates + %s,
    updated_at = %s
WHERE id = %s AND status = %s AND resume_offset = %s
"""  # noqa: S608 - names from the model's _meta, values as parameters


class BatchFailure(models.Model):
    """One failed row: its line number (batch file) or index (JSON list) and the reason."""

    ID_LENGTH = MAX_ID_LENGTH
    MESSAGE_LENGTH = 500

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="failures")
    position = models.PositiveIntegerField()
    profile_id = models.CharField(max_length=ID_LENGTH, blank=True)
    code = models.CharField(max_length=32)
    message = models.CharField(max_length=MESSAGE_LENGTH)

    class Meta:
        ordering = ("batch", "position")
        indexes = (models.Index(fields=("batch", "position"), name="batch_failure_position"),)

    def __str__(self) -> str:
        return f"{self.batch_id} {self.position}: {self.message}"

    def describe(self, api_version: str) -> str:
        where = "Profile" if api_version == ApiVersion.JSON else "Line"
        return f"{where} {self.position}: {self.message}"
