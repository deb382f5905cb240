"""/metrics scraped from a real server: gunicorn with 2 workers and a task worker, each
counting in files of its own, added up by whichever worker answers the scrape
(docs/operations.md#metrics). On SQLite, and on PostgreSQL when the suite runs there."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.live_server import LiveServer, live_server
from tests.scrape import Sample, label_values, samples, value

METRICS_TOKEN = "live-metrics-" + "0123456789" * 4
PROFILES = ("u-1", "u-2", "u-3", "u-4")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    work = tmp_path_factory.mktemp("metrics-live")
    with live_server(work, WEB_CONCURRENCY="2", METRICS_TOKEN=METRICS_TOKEN) as running:
        yield running


def wait_for_batches(server: LiveServer, count: int, seconds: float = 60) -> None:
    """Until ``count`` batches are finished, read from the database (not over HTTP, so
    that the calls counted are only those the test makes)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        finished = [batch for batch in server.batches() if batch["status"] != "incomplete"]
        if len(finished) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"the batches did not finish: {server.batches()}")


@pytest.fixture(scope="module")
def scraped(server: LiveServer) -> tuple[dict[Sample, float], str, float]:
    """A known mix of calls, refusals and batches, then one scrape: its samples, its text
    and when the mix started."""
    started = time.time()
    token = {"Authorization": f"Bearer {server.token}"}
    url = server.url
    with requests.Session() as http:
        upload = http.post(
            f"{url}/m2/demo/v2/profile/batchUpdate",
            data=("batch=thirdPartyId,tier\nu-1,gold\nu-2,silver\nu-3," + "v" * 257 + "\n"),
            headers={**token, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert upload.status_code == 200, upload.text
        wait_for_batches(server, 1)
        bulk = http.post(
            f"{url}/api/v1/clients/demo/profiles/bulk",
            json={
                "createMissing": True,
                "profiles": [{"thirdPartyId": "u-4", "attributes": {"tier": "bronze"}}],
            },
            headers=token,
        )
        assert bulk.status_code == 200, bulk.text
        wait_for_batches(server, 2)
        statuses = [
            http.get(f"{url}/rest/v1/profiles/thirdPartyId/u-1?client=demo", headers=token),
            http.get(f"{url}/rest/v1/profiles/thirdPartyId/nobody?client=demo", headers=token),
            http.get(f"{url}/m2/demo/profile/update?mbox3rdPartyId=u-2&profile.a=1", headers=token),
            http.post(
                f"{url}/m2/demo/profile/update",
                data={"mbox3rdPartyId": "u-2", "profile.a": "2"},
                headers=token,
            ),
            http.get(f"{url}/m2/demo/profile/update?mbox3rdPartyId=u-2&profile.a=3"),
            http.get(
                f"{url}/m2/demo/profile/update?mbox3rdPartyId=u-2&profile.a=4",
                headers={"Authorization": f"Bearer {server.token[:-1]}x"},
            ),
            http.get(f"{url}/metrics"),
        ]
        assert [answer.status_code for answer in statuses] == [200, 404, 200, 200, 401, 401, 401]
        found, text = scrape_once_all_are_moved(http, url, len(statuses) + 2)
    return found, text, started


def scrape_once_all_are_moved(
    http: requests.Session, url: str, calls: int, seconds: float = 10
) -> tuple[dict[Sample, float], str]:
    """A scrape that counts ``calls`` requests (the scrapes aside): each worker moves the
    requests it holds into the shared values every second."""
    deadline = time.monotonic() + seconds
    while True:
        scrape = http.get(f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert scrape.status_code == 200, scrape.text
        found = samples(scrape.text)
        if sum(answered(found).values()) >= calls or time.monotonic() > deadline:
            return found, scrape.text
        time.sleep(0.2)


def answered(found: dict[Sample, float]) -> dict[tuple[str, str], float]:
    """``targetadmin_requests_total`` by endpoint and status, but the scrapes that read it."""
    requests_total = {
        (dict(labels)["endpoint"], dict(labels)["status"]): count
        for (name, labels), count in found.items()
        if name == "targetadmin_requests_total" and count
    }
    requests_total.pop(("other", "2xx"), None)
    return requests_total


def test_it_adds_up_the_requests_of_every_worker_by_group_and_status(
    scraped: tuple[dict[Sample, float], str, float],
) -> None:
    found, _, _ = scraped

    assert answered(found) == {
        ("batch", "2xx"): 1,
        ("json_bulk", "2xx"): 1,
        ("fetch", "2xx"): 1,
        ("fetch", "4xx"): 1,
        ("update", "2xx"): 2,
        ("update", "4xx"): 2,
        ("other", "4xx"): 1,  # the scrape without the token
    }
    assert value(found, "targetadmin_request_duration_seconds_count", endpoint="update") == 4
    assert value(found, "targetadmin_request_duration_seconds_count", endpoint="fetch") == 2


def test_it_counts_the_gates_refusals_by_reason(
    scraped: tuple[dict[Sample, float], str, float],
) -> None:
    found, _, _ = scraped

    assert value(found, "targetadmin_auth_refusals_total", reason="missing") == 1
    assert value(found, "targetadmin_auth_refusals_total", reason="invalid") == 1
    assert value(found, "targetadmin_auth_refusals_total", reason="expired") == 0


def test_it_adds_the_task_workers_batches_and_rows(
    scraped: tuple[dict[Sample, float], str, float],
) -> None:
    found, _, _ = scraped

    assert value(found, "targetadmin_batches_total", status="complete") == 2
    assert value(found, "targetadmin_batch_rows_total", outcome="applied") == 3
    assert value(found, "targetadmin_batch_rows_total", outcome="failed") == 1
    assert value(found, "targetadmin_batch_duration_seconds_count") == 2
    # Only the batch file waited for the task worker; the small JSON bulk was applied at once.
    assert value(found, "targetadmin_batch_queue_wait_seconds_count") == 1


def test_it_times_sqlites_writer_queue_on_sqlite_only(
    server: LiveServer, scraped: tuple[dict[Sample, float], str, float]
) -> None:
    found, _, _ = scraped
    waits = value(found, "targetadmin_sqlite_writer_wait_seconds_count")

    # The batch's chunks, the updates and the bulk all wrote (PostgreSQL needs no queue).
    assert waits == 0 if server.database_url else waits >= 4


def test_it_reports_the_task_workers_heartbeat_and_the_database_facts(
    server: LiveServer, scraped: tuple[dict[Sample, float], str, float]
) -> None:
    found, _, started = scraped

    assert value(found, "targetadmin_worker_last_heartbeat_timestamp_seconds") >= started - 20
    assert value(found, "targetadmin_batch_queue_depth") == 0
    assert value(found, "targetadmin_batch_queue_oldest_age_seconds") == 0
    assert value(found, "targetadmin_authentication_required", client="demo") == 1
    expiry = value(found, "targetadmin_token_expiry_timestamp_seconds", client="demo")
    assert 89 * 86400 < expiry - started <= 90 * 86400


def test_every_process_counts_in_files_of_its_own(
    server: LiveServer, scraped: tuple[dict[Sample, float], str, float]
) -> None:
    directory = Path(server.env["TARGETADMIN_VAR_DIR"]) / "metrics"
    pids = {file.stem.rpartition("_")[2] for file in directory.glob("*.db")}

    # The task worker's, the gunicorn workers' that counted, the master's.
    assert len(pids) >= 3


def test_no_label_value_is_a_token_a_profile_id_or_an_address(
    server: LiveServer, scraped: tuple[dict[Sample, float], str, float]
) -> None:
    found, text, _ = scraped

    assert label_values(found) <= {
        *("update", "fetch", "batch", "json_bulk", "management", "pages", "other"),
        *(f"{status_class}xx" for status_class in range(1, 10)),
        *("missing", "invalid", "expired", "revoked", "network", "scope", "throttled"),
        *("applied", "not_found", "failed", "complete", "stuck", "busy", "disk_full"),
        "demo",
    }
    for secret_or_id in (server.token, server.token[-4:], METRICS_TOKEN, *PROFILES, "127.0.0.1"):
        assert secret_or_id not in text
