"""``make bench-batch`` (part of ``make bench``): the batch file path end to end against SQLite alone.

For a 500,000-row (~50 MB) and a 50,000-row v2 file keyed by thirdPartyId it measures:

- engine: the rows, encoded before the clock starts, upserted into a fresh SQLite file with
  plain ``sqlite3`` (``bench/batch_raw.py``): the reference to chase;
- naive: a stdlib script parsing the file and running the same upserts;
- product: a fresh database, gunicorn and one ``db_worker`` started as ``make run`` starts
  them; the file POSTed to ``/m2/bench/v2/profile/batchUpdate``; the clock stops when
  ``batchStatus`` says ``complete`` with every row successful;

and prints the times, each ratio (reference / product), the stages (upload; parse, merge and
bookkeeping as the worker logs them; the rest is waiting for the worker and polling), the
peak RSS (``VmHWM``) of the worker and of the gunicorn worker that took the upload, and the
rows lost or wrong when every profile of the batch is read back from the database. The
product runs twice per size: batch files kept in a directory, then in the database
(``BATCH_STORAGE=database``, docs/operations.md#batch-storage), and both are printed side by side.
"""

from __future__ import annotations

import os

from bench import batch_raw as raw
from bench.product import SIZES, Run, batch_files, print_storages, product_run


def main() -> None:
    results: list[tuple[int, float, float, Run]] = []
    in_database: list[tuple[int, Run, Run]] = []
    with batch_files(SIZES, "") as files:
        for rows, batch_file in files:
            engine = raw.engine_alone(batch_file, batch_file.parent / "raw.sqlite3")
            naive = raw.run(batch_file, batch_file.parent / "raw.sqlite3")
            run = product_run(batch_file, rows)
            results.append((rows, engine, naive, run))
            in_database.append((rows, run, product_run(batch_file, rows, storage="database")))
    print("\nSQLite: engine = plain sqlite3 upserts of pre-encoded rows; naive = a stdlib script;")
    print("product = upload to complete; ratio = reference s / product s (1.0 = as fast)")
    print(
        f"{'rows':>9} {'engine s':>9} {'naive s':>8} {'product s':>10} {'rows/s':>8}"
        f" {'vs engine':>10} {'vs naive':>9} {'worker MB':>10} {'web MB':>7} {'lost':>5} {'wrong':>6}"
    )
    for rows, engine, naive, run in results:
        print(
            f"{rows:>9,} {engine:>9.2f} {naive:>8.2f} {run.seconds:>10.2f}"
            f" {rows / run.seconds:>8,.0f} {engine / run.seconds:>10.2f} {naive / run.seconds:>9.2f}"
            f" {run.worker_peak_kb / 1024:>10.1f} {run.web_peak_kb / 1024:>7.1f}"
            f" {run.lost!s:>5} {run.wrong!s:>6}"
        )
    print(
        f"\n{'rows':>9} {'upload s':>9} {'parse s':>8} {'merge s':>8} {'bookkeeping s':>14}"
        f" {'waiting+polling s':>18}"
    )
    for rows, _, _, run in results:
        parse, merge, books = (
            run.stages.get(k, float("nan")) for k in ("parse", "merge", "bookkeeping")
        )
        rest = run.seconds - run.upload_seconds - parse - merge - books
        print(
            f"{rows:>9,} {run.upload_seconds:>9.2f} {parse:>8.2f} {merge:>8.2f} {books:>14.2f}"
            f" {rest:>18.2f}"
        )
    print_storages(in_database)
    big, small = results[0][3], results[1][3]
    growth = big.worker_peak_kb / small.worker_peak_kb - 1
    print(f"\nworker peak RSS, {results[0][0]:,} vs {results[1][0]:,} rows: {growth:+.1%}")
    lost = sum(run.lost or 0 for _, *runs in in_database for run in runs)
    wrong = sum(run.wrong or 0 for _, *runs in in_database for run in runs)
    print(f"read back every profile of each batch: {lost} lost, {wrong} wrong")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"load average at the end (1, 5, 15 min) on {os.cpu_count()} CPUs: {load}")


if __name__ == "__main__":
    main()
