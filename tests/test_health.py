"""``/healthz``: 200 only while the database answers, reachable by plain-HTTP probes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.test import Client as HttpClient
from django.test import override_settings
from django_tasks_db.models import DBTaskResult

from profiles.models import Client
from tests.batches import batch_id_of, submit

ROOT = Path(__file__).resolve().parent.parent

UNREACHABLE_DATABASE = """
import django

django.setup()
from django.test import Client

response = Client().get("/healthz")
print(response.status_code, response.content.decode())
"""


def test_it_answers_200_while_the_database_answers(db: None, client: HttpClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "queueDepth": 0}
    assert "no-cache" in response["Cache-Control"]


def test_it_counts_the_tasks_waiting_for_a_worker(
    demo: Client, client: HttpClient, settings: Any
) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    for _ in range(2):
        batch_id_of(submit(client, "batch=pcId,tier\np1,gold\n"))
    assert client.get("/healthz").json()["queueDepth"] == 2
    claimed = DBTaskResult.objects.ready().first()
    assert claimed is not None
    claimed.claim("worker-1")
    assert client.get("/healthz").json()["queueDepth"] == 1


def test_it_answers_503_when_the_database_does_not_answer() -> None:
    # A server process configured for a PostgreSQL that nothing listens for.
    env = os.environ | {
        "DATABASE_URL": "postgres://targetadmin@127.0.0.1:9/targetadmin",
        "DJANGO_SETTINGS_MODULE": "targetadmin.settings",
        "ALLOWED_HOSTS": "testserver",
    }
    run = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", UNREACHABLE_DATABASE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    status, body = run.stdout.split(" ", 1)
    assert status == "503"
    assert json.loads(body) == {"database": "unavailable"}
    assert "the database does not answer" in run.stderr


@override_settings(SECURE_SSL_REDIRECT=True)
def test_it_answers_plain_http_probes_when_https_is_enforced(db: None, client: HttpClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/admin/").status_code == 301


def test_it_refuses_anything_but_get(db: None, client: HttpClient) -> None:
    assert client.post("/healthz").status_code == 405
