"""Token usage counted by several processes at once: no call lost or counted twice, and each
process writes a token's counts at most once a minute (docs/tokens.md#usage)."""

from __future__ import annotations

import json
import os
import sqlite3
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum

from profiles.access.actors import SYSTEM
from profiles.models import Client, Integration, ProfileApiSettings, ProfileToken, TokenUsage
from profiles.tokens import usage
from profiles.tokens.permissions import Permission
from tests.fixtures import database_in_a_file
from tests.gunicorn_server import environment, gunicorn
from tests.profile_api import PC_ID, a_profile, issue, require_authentication
from tests.support import manage, run_probe

PROCESSES = 4
THREADS = 4
CALLS = 10_000
ADDRESS = "203.0.113.5"
FETCH = f"/rest/v1/profiles/{PC_ID}?client=demo"
UPDATE = "/m2/demo/profile/update?mbox3rdPartyId=u-1&profile.tier=gold"
FETCH_ACME = f"/rest/v1/profiles/{PC_ID}?client=acme"


@pytest.fixture
def database_url(django_db_blocker: Any, tmp_path: Path) -> Iterator[str]:
    """A DATABASE_URL naming the test's database, which this process uses too."""
    if connection.vendor == "postgresql":
        yield "postgres://{USER}:{PASSWORD}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict)
        return
    with database_in_a_file(django_db_blocker, tmp_path / "targetadmin.sqlite3") as path:
        yield f"sqlite:///{path}"


def an_integration(client: Client, name: str, allowed: Permission) -> tuple[Integration, str]:
    integration, _, plaintext = ProfileToken.objects.add_integration(
        client, name=name, granted=allowed, expires_in_days=30, actor=SYSTEM
    )
    return integration, plaintext


def probe(env: dict[str, str], plan: dict[str, Any]) -> dict[str, Any]:
    return run_probe("tests.token_usage_probe", env, given=json.dumps(plan))


def stored(client: Client, integration: Integration | None) -> dict[str, int]:
    rows = TokenUsage.objects.filter(client=client, integration=integration)
    sums = rows.aggregate(**{name: Sum(name) for name in usage.COUNTERS})
    return {name: total for name, total in sums.items() if total}


@pytest.mark.django_db(transaction=True)
def test_counts_are_exact_after_10000_concurrent_calls_over_4_processes_written_once_a_minute(
    database_url: str, tmp_path: Path
) -> None:
    demo = Client.objects.create(code="demo", name="Demo")
    acme = Client.objects.create(code="acme", name="Acme")
    a_profile(demo)
    for client in (demo, acme):
        require_authentication(client)
    _, own = issue(demo)
    crm, fetch_only = an_integration(demo, "CRM sync", Permission.FETCH)
    old, revoked = an_integration(demo, "old export", Permission.BATCH)
    ProfileToken.objects.revoke_integration(old, actor=SYSTEM)
    stale, expired = an_integration(demo, "stale", Permission.FETCH)
    ProfileToken.objects.filter(integration=stale).update(
        expires_at=stale.created_at - timedelta(days=1)
    )
    _, acmes = issue(acme)
    ProfileApiSettings.for_client(acme).set_allowed_networks(["192.0.2.0/24"], actor=SYSTEM)
    # Every tenth call of each kind but the first three: 3 in 10 with the client's token, 3
    # in 10 a fetch and 1 in 10 an update with the fetch-only token, then an expired and a
    # revoked token, and a call from outside acme's allowed networks.
    cycle = [
        *[(FETCH, own, ADDRESS)] * 3,
        *[(FETCH, fetch_only, ADDRESS)] * 3,
        (UPDATE, fetch_only, ADDRESS),
        (FETCH, expired, "198.51.100.1"),
        (FETCH, revoked, "198.51.100.2"),
        (FETCH_ACME, acmes, "198.51.100.3"),
    ]
    share = CALLS // PROCESSES
    plan = {
        "calls": [list(cycle[n % len(cycle)]) for n in range(share)],
        "threads": THREADS,
        "start_at": time.time() + 5,
    }
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DATABASE_URL", "GUNICORN_"))
    } | {
        "DATABASE_URL": database_url,
        "ALLOWED_HOSTS": "127.0.0.1",
        "TARGETADMIN_VAR_DIR": str(tmp_path / "var"),
        "LOG_LEVEL": "ERROR",
    }

    with ThreadPoolExecutor(PROCESSES) as pool:
        results = list(pool.map(lambda _: probe(env, plan), range(PROCESSES)))

    statuses = sum((Counter(result["statuses"]) for result in results), Counter())
    assert sum(statuses.values()) == CALLS
    assert statuses["200"] == CALLS * 6 // 10
    unit = CALLS // 10
    assert stored(demo, None) == {"accepted": 3 * unit, "fetch_calls": 3 * unit}
    assert stored(demo, crm) == {
        "accepted": 3 * unit,
        "refused_scope": unit,
        "fetch_calls": 3 * unit,
        "update_calls": unit,
    }
    assert stored(demo, stale) == {"refused_expired": unit, "fetch_calls": unit}
    assert stored(demo, old) == {"refused_revoked": unit, "fetch_calls": unit}
    assert stored(acme, None) == {"refused_network": unit, "fetch_calls": unit}
    for result in results:
        by_token: dict[tuple[int, int | None], list[tuple[float, bool]]] = defaultdict(list)
        for seconds, client_id, integration_id, stopping in result["writes"]:
            by_token[client_id, integration_id].append((seconds, stopping))
        assert len(by_token) == 5
        for writes in by_token.values():
            while_calling = [seconds for seconds, stopping in writes if not stopping]
            # A token's first write waits a minute, and each one after it another minute.
            assert all(seconds >= 60 * (n + 1) for n, seconds in enumerate(while_calling))
            assert len(while_calling) <= result["seconds"] // 60
            assert [stopping for _, stopping in writes].count(True) <= 1


SET_UP_DEMO = """
from profiles.access.actors import SYSTEM
from profiles.models import Client, ProfileApiSettings, ProfileToken
demo = Client.objects.create(code="demo", name="Demo")
ProfileApiSettings.for_client(demo).set_require_authentication(True, actor=SYSTEM)
print(ProfileToken.objects.issue(demo, expires_in_days=30, actor=SYSTEM)[1])
"""


def test_gunicorns_workers_write_what_they_counted_when_they_stop(tmp_path: Path) -> None:
    calls = 40
    with gunicorn(tmp_path, WEB_CONCURRENCY="2") as server:
        made = manage(environment(tmp_path), "shell", "-c", SET_UP_DEMO, check=True)
        token = made.stdout.split()[-1]
        for _ in range(calls):
            request = urllib.request.Request(  # noqa: S310 - the loopback server
                server.url(FETCH), headers={"Authorization": f"Bearer {token}"}
            )
            with pytest.raises(urllib.error.HTTPError) as answer:
                urllib.request.urlopen(request, timeout=30)  # noqa: S310
            assert answer.value.code == 404  # accepted: demo has no such profile
        with closing(sqlite3.connect(tmp_path / "targetadmin.sqlite3")) as database:
            written_while_serving = database.execute(
                "SELECT count(*) FROM profiles_tokenusage"
            ).fetchone()

    with closing(sqlite3.connect(tmp_path / "targetadmin.sqlite3")) as database:
        stored_counts = database.execute(
            "SELECT sum(accepted), sum(fetch_calls) FROM profiles_tokenusage"
        ).fetchone()
    assert written_while_serving == (0,)  # within the minute, nothing is written
    assert stored_counts == (calls, calls)
