"""``make bench-postgresql`` (part of ``make bench``): the batch file path on PostgreSQL.

The same files as ``make bench-batch`` (a 500,000-row, ~50 MB and a 50,000-row v2 file keyed
by thirdPartyId), against the database ``DATABASE_URL`` names (``make bench-postgresql``
starts a throwaway local server, as the tests do):

- raw: plain psycopg, no Django: the rows ``COPY``-ed into a temporary table, then one
  ``INSERT … SELECT … ON CONFLICT DO UPDATE`` with the product's jsonb merge, into a freshly
  migrated database;
- product: a fresh database, gunicorn and one ``db_worker`` as ``make run`` starts them, the
  file POSTed to ``batchUpdate``, the clock stopped when ``batchStatus`` says ``complete``
  (``bench/product.py``, as ``bench/batch.py`` runs it, with ``DATABASE_URL`` set);

and prints both times, rows per second and their ratio (target: at least 0.9), then the
product again with batch files kept in the database (``BATCH_STORAGE=database``,
docs/operations.md#batch-storage) beside the directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from bench import batch_raw, product

MERGE = """
INSERT INTO profiles_profile (client_id, pc_id, third_party_id, attributes, created_at, modified_at)
SELECT %(client_id)s, pc_id, key, attributes, %(now)s, %(now)s FROM rows
ON CONFLICT (client_id, third_party_id) DO UPDATE SET
    attributes = profiles_profile.attributes || excluded.attributes,
    modified_at = excluded.modified_at
"""
TARGET_RATIO = 0.9


def fresh_database(server_url: str, name: str) -> str:
    """Drop and create database ``name`` on the server; returns its URL."""
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return urlsplit(server_url)._replace(path=f"/{name}").geturl()


def migrated(url: str, work: Path) -> int:
    """Migrate the database and create the bench client; returns the client's id."""
    env = {**os.environ, "DATABASE_URL": url, "TARGETADMIN_VAR_DIR": str(work / "var")}
    manage = [product.PYTHON, str(product.ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], check=True, env=env)
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute(
            "INSERT INTO profiles_client (code, name, created_at) VALUES ('bench', 'Bench', now())"
            " RETURNING id"
        ).fetchone()
    assert row is not None
    return int(row[0])


def raw(batch_file: Path, url: str, client_id: int) -> float:
    """COPY the file's rows and merge them in one statement; returns the seconds it took."""
    stamp = datetime.now(UTC)
    with psycopg.connect(url) as connection:
        started = time.perf_counter()
        with connection.transaction():
            connection.execute(
                "CREATE TEMPORARY TABLE rows (key text, pc_id text, attributes jsonb) ON COMMIT DROP"
            )
            with connection.cursor().copy("COPY rows (key, pc_id, attributes) FROM STDIN") as copy:
                for pc_id, key, attributes, _, _ in batch_raw.rows(batch_file, stamp.isoformat()):
                    copy.write_row((key, pc_id, attributes))
            connection.execute(MERGE, {"client_id": client_id, "now": stamp})
        return time.perf_counter() - started


def main() -> None:
    server_url = os.environ.get("DATABASE_URL", "")
    if not server_url.startswith("postgres"):
        sys.exit("DATABASE_URL must name a PostgreSQL database (make bench-postgresql sets one)")
    sizes = [int(size) for size in sys.argv[1:]] or list(product.SIZES)
    measures = []
    in_database: list[tuple[int, product.Run, product.Run]] = []
    with product.batch_files(sizes, " on PostgreSQL") as files:
        for rows, batch_file in files:
            raw_url = fresh_database(server_url, "bench_raw")
            raw_seconds = raw(batch_file, raw_url, migrated(raw_url, batch_file.parent))
            runs = [
                product.product_run(
                    batch_file,
                    rows,
                    database_url=fresh_database(server_url, "bench_product"),
                    storage=storage,
                )
                for storage in ("directory", "database")
            ]
            run = runs[0]
            measures.append(
                product.Measure(
                    rows,
                    raw_seconds,
                    run.seconds,
                    run.upload_seconds,
                    run.worker_peak_kb,
                    run.web_peak_kb,
                )
            )
            in_database.append((rows, runs[0], runs[1]))
    print()
    print("PostgreSQL: raw = COPY + one merge in plain psycopg; product = upload to complete")
    print(
        f"{'rows':>9} {'raw s':>7} {'raw rows/s':>11} {'product s':>10} {'upload s':>9}"
        f" {'rows/s':>9} {'ratio':>6} {'worker MB':>10} {'web MB':>7}"
    )
    for m in measures:
        ratio = m.raw_seconds / m.product_seconds
        print(
            f"{m.rows:>9,} {m.raw_seconds:>7.2f} {m.rows / m.raw_seconds:>11,.0f}"
            f" {m.product_seconds:>10.2f} {m.upload_seconds:>9.2f}"
            f" {m.rows / m.product_seconds:>9,.0f} {ratio:>6.2f}"
            f" {m.worker_peak_kb / 1024:>10.1f} {m.web_peak_kb / 1024:>7.1f}"
            f"  {'met' if ratio >= TARGET_RATIO else 'missed'} (target ≥ {TARGET_RATIO})"
        )
    product.print_storages(in_database)


if __name__ == "__main__":
    main()
