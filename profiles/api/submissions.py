"""Taking in a bulk submission: idempotency, the per-client rate limit, storing, enqueueing.

Every bulk way in (batch file v1/v2, JSON bulk) goes through :func:`admit` first (a replay
is answered and a client over its limit refused before an upload is read), then stores its
rows and creates the ``Batch`` through :func:`create`, which admits it again atomically;
the worker (or, for a small JSON batch, the request itself) applies them through
``profiles.ingest.processing``.

A request refused whole (4xx) creates no batch, so its ``Idempotency-Key`` stays free and a
corrected retry with the same key is applied.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from profiles import tasks
from profiles.access.models import Client
from profiles.api import bodies, json_body
from profiles.api.uploads import store_multipart, store_raw_body
from profiles.ingest import processing
from profiles.ingest.batches import ApiVersion, Batch, Status, new_batch_id
from profiles.ingest.batchfile import BatchFileWriter
from profiles.ingest.storage import batch_files
from profiles.rules.errors import ErrorCode, ProductError
from profiles.rules.limits import MAX_IDEMPOTENCY_KEY_LENGTH

IDEMPOTENCY_HEADER = "Idempotency-Key"


def idempotency_key(request: HttpRequest) -> str:
    key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not key.isprintable():
        raise ProductError(
            ErrorCode.BAD_IDEMPOTENCY_KEY,
            f"The {IDEMPOTENCY_HEADER} header must be at most "
            f"{MAX_IDEMPOTENCY_KEY_LENGTH} printable characters.",
        )
    return key


def admit(client: Client, key: str, now: datetime) -> Batch | None:
    """The original batch when ``key`` was already used; else check the rate limit.

    Raises ``RATE_LIMITED`` with the seconds to wait when the client has used up its bulk
    submissions for the minute. A replay of a known key is never limited.
    """
    if key:
        original = Batch.objects.with_idempotency_key(client, key, now)
        if original is not None:
            return original
    wait = Batch.objects.retry_after(client, now)
    if wait is not None:
        raise ProductError(
            ErrorCode.RATE_LIMITED,
            f"Too many bulk submissions: at most {settings.BULK_SUBMISSIONS_PER_MINUTE} "
            f"a minute per client. Retry in {wait} seconds.",
            retry_after=wait,
        )
    return None


def create(batch: Batch, then: Callable[[Batch], None] | None = None) -> Batch:
    """Save the new ``batch``, or return the batch its idempotency key already names.

    One transaction per client at a time: it holds the client's row lock (on SQLite, the
    write lock ``BEGIN IMMEDIATE`` takes), admits the batch again and inserts it, so
    neither submissions racing with one key nor a burst past the rate limit slip between
    the check and the insert. The unique constraint ``batch_idempotency_key_once`` holds
    each live key once per client even so. ``then`` (applying a small batch) runs in the
    same transaction: when it raises, no batch is left and the key stays free.
    """
    client, key = batch.client, batch.idempotency_key
    try:
        with transaction.atomic():
            # The per-client lock; SQLite ignores it, its BEGIN IMMEDIATE already serialises.
            Client.objects.select_for_update(no_key=True).filter(pk=client.pk).exists()
            now = timezone.now()
            if key:
                Batch.objects.expire_idempotency_key(client, key, now)
            original = admit(client, key, now)
            if original is not None:
                return original
            batch.created_at = batch.updated_at = now
            batch.save(force_insert=True)
            if then is not None:
                then(batch)
    except IntegrityError:
        original = Batch.objects.with_idempotency_key(client, key, timezone.now()) if key else None
        if original is None:
            raise
        return original
    return batch


def _is_multipart(request: HttpRequest) -> bool:
    return request.content_type == "multipart/form-data"


def submit_file(request: HttpRequest, client: Client, version: ApiVersion) -> Batch:
    """Store the request's batch file and enqueue it; whole-file problems raise ``FileRefused``."""
    now = timezone.now()
    key = idempotency_key(request)
    original = admit(client, key, now)
    if original is not None:
        return original
    batch_id = new_batch_id(client, now)
    multipart = _is_multipart(request)
    files = batch_files()
    writer = BatchFileWriter(
        files,
        f"{batch_id}.txt",
        max_bytes=settings.BATCH_MAX_BYTES,
        max_rows=settings.BATCH_MAX_ROWS,
        prefix_required=not multipart,
    )
    try:
        stored = store_multipart(request, writer) if multipart else store_raw_body(request, writer)
    except BaseException:
        writer.discard()
        raise
    batch = Batch(
        id=batch_id,
        client=client,
        api_version=version,
        key_kind=stored.header.kind,
        attribute_names=list(stored.header.names),
        create_missing=version == ApiVersion.V2,
        batch_size=stored.rows,
        idempotency_key=key,
        file_name=stored.name,
        resume_offset=stored.data_offset,
        resume_position=2,  # line 1 is the header
    )
    try:
        created = create(batch)
    except BaseException:
        files.delete(stored.name)  # no batch, no file: the upload left no trace
        raise
    if created is not batch:  # a submission with the same key got there first
        files.delete(stored.name)
        return created
    if batch.batch_size:
        tasks.enqueue(batch)
    else:
        batch.finish(Status.COMPLETE)
    return batch


def _json_body(request: HttpRequest) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise ProductError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE, "Send the profiles as Content-Type: application/json."
        )
    limit = settings.JSON_BULK_MAX_BYTES
    body = bodies.read_body(
        request,
        max_bytes=limit,
        too_large=lambda: ProductError(
            ErrorCode.TOO_LARGE,
            f"The request body must be at most {limit:,} bytes; send larger loads as a batch file.",
        ),
    )
    payload = json_body.loads(body, ErrorCode.BAD_JSON, "The body is not valid JSON: {reason}.")
    if not isinstance(payload, dict):
        raise ProductError(ErrorCode.BAD_JSON, "The body must be a JSON object.")
    return payload


def _profiles(payload: dict[str, Any]) -> tuple[list[Any], bool]:
    profiles = payload.get("profiles")
    if not isinstance(profiles, list):
        raise ProductError(ErrorCode.INVALID, "'profiles' must be a list of profiles.")
    create_missing = payload.get("createMissing", False)
    if not isinstance(create_missing, bool):
        raise ProductError(ErrorCode.INVALID, "'createMissing' must be true or false.")
    if len(profiles) > settings.BATCH_MAX_ROWS:
        raise ProductError(
            ErrorCode.TOO_LARGE, f"A batch holds at most {settings.BATCH_MAX_ROWS:,} profiles."
        )
    return profiles, create_missing


def submit_json(request: HttpRequest, client: Client) -> Batch:
    """Take a JSON bulk request (docs/api.md#json-bulk-update) and return its batch.

    Up to ``JSON_BULK_INLINE_PROFILES`` profiles are applied inside the request; larger
    batches are stored as one ``[index, profile]`` JSON line each and go to the worker.
    """
    now = timezone.now()
    key = idempotency_key(request)
    payload = _json_body(request)
    profiles, create_missing = _profiles(payload)
    original = admit(client, key, now)
    if original is not None:
        return original
    batch_id = new_batch_id(client, now)
    inline = len(profiles) <= settings.JSON_BULK_INLINE_PROFILES
    name = f"{batch_id}.jsonl"
    files = batch_files()
    batch = Batch(
        id=batch_id,
        client=client,
        api_version=ApiVersion.JSON,
        create_missing=create_missing,
        batch_size=len(profiles),
        idempotency_key=key,
        file_name="" if inline else name,
    )

    def apply_inline(batch: Batch) -> None:
        entries = ((processing.json_entry(i, item), i + 1) for i, item in enumerate(profiles))
        chunks = processing.chunks(entries, settings.BATCH_CHUNK_ROWS)
        processing.process(batch, processing.prepared(batch, chunks))

    try:
        if not inline:
            with files.open(name, "wb") as handle:
                for index, item in enumerate(profiles):
                    # ASCII escapes carry every string json.loads made, a lone surrogate
                    # included, to the worker, whose checks refuse that row alone.
                    handle.write(json.dumps([index, item]).encode() + b"\n")
        created = create(batch, then=apply_inline if inline else None)
    except BaseException:
        if not inline:
            files.delete(name)  # a half-written file or one no batch points to
        raise
    if created is not batch:  # a submission with the same key got there first
        if not inline:
            files.delete(name)
        return created
    if not inline:
        tasks.enqueue(batch)
    batch.refresh_from_db()
    return batch
