"""Group commit of single updates, on and off (docs/performance.md#group-commit).

``.venv/bin/python -m bench.group_commit`` (``--help`` for the knobs): in one process, as one
gunicorn worker runs them, threads send single updates through ``profiles.ingest.single``
(no HTTP) to a fresh SQLite file, each to a profile of its own in turn. Rounds with
``SINGLE_UPDATE_GROUP_COMMIT`` on and off alternate, which one goes first changing each
round, so that a shared machine's noise falls on both alike; it prints every round and the
ratios of each pair (on / off) of updates a second and of p99 latency.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Round:
    grouped: bool
    per_second: float
    p50_ms: float
    p99_ms: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each round")
    parser.add_argument("--rounds", type=int, default=5, help="pairs of rounds, on and off")
    parser.add_argument("--profiles", type=int, default=1000)
    options = parser.parse_args()
    os.environ["TARGETADMIN_VAR_DIR"] = tempfile.mkdtemp(prefix="bench-group-commit-")
    os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "targetadmin.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    rounds: dict[bool, list[Round]] = {True: [], False: []}
    for number in range(options.rounds):
        for grouped in (True, False) if number % 2 == 0 else (False, True):
            measured = run_round(grouped, options.threads, options.seconds, options.profiles)
            rounds[grouped].append(measured)
            print(
                f"round {number} group commit {'on ' if grouped else 'off'}: "
                f"{measured.per_second:.0f} updates/s, p50 {measured.p50_ms:.2f} ms, "
                f"p99 {measured.p99_ms:.2f} ms",
                flush=True,
            )
    pairs = list(zip(rounds[True], rounds[False], strict=True))
    rate = [on.per_second / off.per_second for on, off in pairs]
    p99 = [on.p99_ms / off.p99_ms for on, off in pairs]
    print("updates/s, on / off:", " ".join(f"{r:.2f}" for r in rate), end="")
    print(f"; median {statistics.median(rate):.2f}")
    print("p99, on / off:", " ".join(f"{r:.2f}" for r in p99), end="")
    print(f"; median {statistics.median(p99):.2f}")


def run_round(grouped: bool, threads: int, seconds: float, profiles: int) -> Round:
    from django.conf import settings
    from django.db import connections

    from profiles.ingest import single
    from profiles.models import Client, Profile
    from profiles.store import KeyKind

    settings.SINGLE_UPDATE_GROUP_COMMIT = grouped
    code = f"bench-{'on' if grouped else 'off'}-{time.monotonic_ns()}"
    client = Client.objects.create(code=code, name=code)
    Profile.objects.bulk_create(
        Profile(client=client, pc_id=f"p{n}", third_party_id=f"t{n}", attributes={})
        for n in range(profiles)
    )
    stop = threading.Event()
    start = threading.Barrier(threads + 1)
    latencies: list[list[float]] = [[] for _ in range(threads)]

    def send(sender: int) -> None:
        number = sender
        start.wait()
        while not stop.is_set():
            began = time.perf_counter()
            single.apply(
                client, KeyKind.THIRD_PARTY_ID, f"t{number % profiles}", {f"a{number % 20}": "v"}
            )
            latencies[sender].append(time.perf_counter() - began)
            number += threads
        connections.close_all()

    senders = [threading.Thread(target=send, args=(n,)) for n in range(threads)]
    for sender in senders:
        sender.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for sender in senders:
        sender.join()
    elapsed = time.perf_counter() - began
    every = sorted(latency for own in latencies for latency in own)
    return Round(
        grouped,
        len(every) / elapsed,
        every[len(every) // 2] * 1000,
        every[int(len(every) * 0.99)] * 1000,
    )


if __name__ == "__main__":
    main()
