"""The references: the same rows merged into a fresh SQLite file with plain ``sqlite3``.

No Django, no validation, no progress tracking: one ``executemany`` upsert per 10,000 rows
with the product's merge semantics (``json_patch`` of ``{"name": {"value", "modifiedAt"}}``
into the stored attributes) on the product's table shape and indexes.

- :func:`engine_alone`: the rows are split, decoded and JSON-encoded before the clock
  starts; only the upserts and commits are timed (the engine alone, docs/performance.md).
- :func:`run`: a naive stdlib script, parsing timed along with the upserts.

:func:`expected` gives each key's final values, for checking what the product stored.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from urllib.parse import unquote_plus

# The product's tables as its migrations create them on SQLite (``sqlite3 .schema``).
SCHEMA = """
CREATE TABLE "profiles_client" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT);
INSERT INTO "profiles_client" ("id") VALUES (1);
CREATE TABLE "profiles_profile" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT,
    "pc_id" varchar(64) NOT NULL, "third_party_id" varchar(256) NULL,
    "attributes" text NOT NULL CHECK ((JSON_VALID("attributes") OR "attributes" IS NULL)),
    "created_at" datetime NOT NULL, "modified_at" datetime NOT NULL,
    "client_id" bigint NOT NULL REFERENCES "profiles_client" ("id") DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT "unique_pc_id_per_client" UNIQUE ("client_id", "pc_id"),
    CONSTRAINT "unique_third_party_id_per_client" UNIQUE ("client_id", "third_party_id"));
CREATE INDEX "profiles_profile_modified_at_d1181786" ON "profiles_profile" ("modified_at");
"""

UPSERT = """
INSERT INTO profiles_profile (client_id, pc_id, third_party_id, attributes, created_at, modified_at)
VALUES (1, ?, ?, ?, ?, ?)
ON CONFLICT (client_id, third_party_id) DO UPDATE SET
    attributes = json_patch(profiles_profile.attributes, excluded.attributes),
    modified_at = excluded.modified_at
"""


def rows(path: Path, stamp: str) -> Iterator[tuple[str, str, str, str, str]]:
    with path.open("rb") as handle:
        names = handle.readline().decode().rstrip("\r\n").removeprefix("batch=").split(",")[1:]
        start = time.time_ns() // 1_000_000
        for number, raw in enumerate(handle):
            line = raw.decode().rstrip("\r\n")
            if not line:
                continue
            cells = [
                (unquote_plus(cell) if "%" in cell or "+" in cell else cell).strip()
                for cell in line.split(",")
            ]
            attributes = {
                name: {"value": value, "modifiedAt": stamp}
                for name, value in zip(names, cells[1:], strict=False)
                if value
            }
            pc_id = f"{start:013d}-{number % 10**6:06d}.{number // 10**6:02d}_00"
            yield (
                pc_id,
                cells[0],
                json.dumps(attributes, ensure_ascii=False, separators=(",", ":")),
                stamp,
                stamp,
            )


def expected(path: Path) -> dict[str, dict[str, str]]:
    """Each key's values after the file is merged in order (empty values change nothing)."""
    merged: dict[str, dict[str, str]] = {}
    for _, key, attributes, _, _ in rows(path, ""):
        values = {name: cell["value"] for name, cell in json.loads(attributes).items()}
        merged[key] = merged.get(key, {}) | values
    return merged


def _fresh(database: Path) -> sqlite3.Connection:
    database.unlink(missing_ok=True)
    connection = sqlite3.connect(database, isolation_level=None)
    connection.executescript(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;" + SCHEMA
    )
    return connection


def engine_alone(batch_file: Path, database: Path) -> float:
    """Seconds to upsert the file's rows, encoded before the clock starts."""
    return engine_alone_timed(batch_file, database)[0]


def engine_alone_timed(batch_file: Path, database: Path) -> tuple[float, float]:
    """``engine_alone``'s seconds, and the CPU seconds of the same span."""
    connection = _fresh(database)
    encoded = list(rows(batch_file, datetime.now(UTC).isoformat()))
    started, cpu_started = time.perf_counter(), time.process_time()
    for start in range(0, len(encoded), 10_000):
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(UPSERT, encoded[start : start + 10_000])
        connection.execute("COMMIT")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    connection.close()
    return elapsed, cpu


def run(batch_file: Path, database: Path) -> float:
    """Parse and merge the file into a fresh database (the naive script); returns its seconds."""
    connection = _fresh(database)
    stamp = datetime.now(UTC).isoformat()
    started = time.perf_counter()
    source = rows(batch_file, stamp)
    while chunk := list(islice(source, 10_000)):
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(UPSERT, chunk)
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


if __name__ == "__main__":
    import sys

    print(f"engine alone: {engine_alone(Path(sys.argv[1]), Path(sys.argv[2])):.2f} s")
    print(f"naive script: {run(Path(sys.argv[1]), Path(sys.argv[2])):.2f} s")
