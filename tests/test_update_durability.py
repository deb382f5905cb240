"""A 200 to a single update means the update is committed (docs/api.md#single-profile-update).

gunicorn, as ``make run`` starts it, takes single updates from several threads at once, all
aimed at the same few profiles, each setting an attribute of its own; mid-load the server and
its workers are killed with SIGKILL. Every update that was answered 200 is in the database
afterwards, and none of the concurrent updates of one profile lost another's attribute: on
SQLite (several processes queue for its one writer, and each commits the updates of its
threads in groups, docs/operations.md#group-commit) and on PostgreSQL.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from django.db import connection

from profiles.models import Client, Profile
from tests.gunicorn_server import Server, environment, gunicorn
from tests.support import manage

PROFILES = ("p-0", "p-1", "p-2")
SENDERS = 8
LOAD_SECONDS = 1.5
# A loaded machine can take seconds to answer a fresh server's first request; the load is
# timed from then, so the kill always lands mid-load.
FIRST_ANSWER_SECONDS = 60


class Load:
    """Senders that update the profiles in turn and remember every update answered 200."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.acknowledged: list[tuple[str, str]] = []  # (profile id, attribute name)
        self.refused: list[int] = []
        self.answered = threading.Event()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.send, args=(n,)) for n in range(SENDERS)]

    def send(self, sender: int) -> None:
        number = 0
        keep_alive = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=5)
        while not self.stop.is_set():
            profile, name = PROFILES[number % len(PROFILES)], f"s{sender}n{number}"
            number += 1
            try:
                keep_alive.request(
                    "GET", f"/m2/demo/profile/update?mboxPC={profile}&profile.{name}=v"
                )
                response = keep_alive.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                # The server is gone: whatever was not answered was not promised.
                keep_alive.close()
                time.sleep(0.01)
                continue
            self.answered.set()
            if status == 200:
                self.acknowledged.append((profile, name))
            else:
                self.refused.append(status)
        keep_alive.close()

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def kill_under_load(server: Server) -> Load:
    with Load(server) as load:
        assert load.answered.wait(FIRST_ANSWER_SECONDS), "the server never answered"
        time.sleep(LOAD_SECONDS)
        os.killpg(server.pid, signal.SIGKILL)
        time.sleep(0.2)
    return load


def assert_every_acknowledged_update_is_stored(
    load: Load, stored: dict[str, dict[str, object]]
) -> None:
    assert len(load.acknowledged) > 50, "too little load to show anything"
    assert load.refused == []
    missing = [(p, name) for p, name in load.acknowledged if name not in stored.get(p, {})]
    assert missing == []


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[Server]:
    with gunicorn(tmp_path, WEB_CONCURRENCY="2") as server:
        seed = "; ".join(
            [
                "from profiles.models import Client, Profile",
                "c = Client.objects.create(code='demo', name='Demo')",
                *(
                    f"Profile.objects.create(client=c, pc_id='{p}', attributes={{}})"
                    for p in PROFILES
                ),
            ]
        )
        manage(environment(tmp_path), "shell", "-c", seed, check=True)
        yield server


def test_every_acknowledged_update_survives_a_sigkill_on_sqlite(
    sqlite_server: Server, tmp_path: Path
) -> None:
    load = kill_under_load(sqlite_server)

    # Opening the database after the crash recovers it from its write-ahead log.
    with closing(sqlite3.connect(tmp_path / "targetadmin.sqlite3")) as database:
        rows = database.execute("SELECT pc_id, attributes FROM profiles_profile").fetchall()
    assert_every_acknowledged_update_is_stored(
        load, {pc_id: json.loads(attributes) for pc_id, attributes in rows}
    )


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_every_acknowledged_update_survives_a_sigkill_on_postgresql(tmp_path: Path) -> None:
    client = Client.objects.create(code="demo", name="Demo")
    for pc_id in PROFILES:
        Profile.objects.create(client=client, pc_id=pc_id, attributes={})
    url = "postgres://{USER}:{PASSWORD}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict)

    with gunicorn(tmp_path, WEB_CONCURRENCY="2", DATABASE_URL=url) as server:
        load = kill_under_load(server)

    stored = {p.pc_id: p.attributes for p in Profile.objects.filter(client=client)}
    assert_every_acknowledged_update_is_stored(load, stored)
