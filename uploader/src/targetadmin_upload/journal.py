"""FILE.upload-state.json: the parts the server has acknowledged, so a rerun resumes.

Each part is sent with an ``Idempotency-Key`` derived from the client, the endpoint, the
part's number and its bytes; the server answers a key it saw within 24 hours
with the original batch and applies nothing. The journal spares a rerun even the sending:
a part whose key it holds (and younger than that window) is not sent again, only followed.
It is deleted once every part is done.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

FORMAT = 1
# The server keeps keys for 24 hours (BATCH_IDEMPOTENCY_HOURS); an entry older than this
# margin below it is not trusted, and the part is sent again under its key.
MAX_AGE_SECONDS = 23 * 3600


class Journal:
    """Keyed by idempotency key; an entry counts only for the server it was sent to."""

    def __init__(self, path: Path, server: str) -> None:
        self.path = path
        self.server = server
        self._parts: dict[str, dict[str, object]] = {}
        self.writable = True
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(document, dict) and document.get("format") == FORMAT:
            parts = document.get("parts")
            if isinstance(parts, dict):
                self._parts = {k: v for k, v in parts.items() if isinstance(v, dict)}

    def batch_id(self, idempotency_key: str) -> str | None:
        entry = self._parts.get(idempotency_key)
        if entry is None:
            return None
        sent_at, batch_id = entry.get("sentAt"), entry.get("batchId")
        if not isinstance(sent_at, int | float) or not isinstance(batch_id, str):
            return None
        if entry.get("server") != self.server:
            return None  # sent elsewhere, or by another name: the key itself will tell
        return batch_id if time.time() - sent_at < MAX_AGE_SECONDS else None

    def record(self, idempotency_key: str, batch_id: str) -> None:
        self._parts[idempotency_key] = {
            "batchId": batch_id,
            "server": self.server,
            "sentAt": int(time.time()),
        }
        if not self.writable:
            return
        partial = self.path.with_name(self.path.name + ".tmp")
        try:
            partial.write_text(
                json.dumps({"format": FORMAT, "parts": self._parts}), encoding="utf-8"
            )
            os.replace(partial, self.path)
        except OSError:
            self.writable = False  # the keys still protect a rerun; it only sends again

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()
