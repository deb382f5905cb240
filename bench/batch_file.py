"""A deterministic v2 batch file keyed by thirdPartyId, for the benchmark.

Each row names a visitor and sets several attributes; a few values carry percent-encoded
commas and spaces, as real exports do. The same ``rows`` always give the same bytes.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from pathlib import Path

ATTRIBUTES = ("tier", "city", "visits", "lastPurchase", "segment", "score", "channel")
TIERS = ("bronze", "silver", "gold", "platinum")
CITIES = ("Paris", "New+York+City", "S%C3%A3o+Paulo", "Berlin", "Tokyo", "Austin%2C+TX")
SEGMENTS = ("new", "returning", "loyal", "lapsed", "vip")
CHANNELS = ("email", "web", "app", "store", "partner")


def lines(rows: int, seed: int = 20261126) -> Iterator[str]:
    rng = random.Random(seed)
    yield "batch=thirdPartyId," + ",".join(ATTRIBUTES)
    for n in range(rows):
        yield (
            ",".join(
                (
                    f"visitor-{n:08d}-{rng.randrange(16**8):08x}",
                    rng.choice(TIERS),
                    rng.choice(CITIES),
                    str(rng.randrange(1, 5000)),
                    f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T12:00:00Z",
                    rng.choice(SEGMENTS),
                    f"{rng.random():.6f}",
                    f"{rng.choice(CHANNELS)}-campaign-{rng.randrange(1000):03d}",
                )
            )
        )


def write(path: Path, rows: int) -> int:
    """Write the file (``\\n`` line ends) and return its size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for line in lines(rows):
            handle.write(line + "\n")
    return path.stat().st_size


if __name__ == "__main__":
    target = Path(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 500_000
    print(f"{target}: {write(target, count):,} bytes")
