"""/metrics (docs/operations.md#metrics): who may scrape it, and what it counts."""

from __future__ import annotations

import hashlib
import os
import select
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import get_commands
from django.test import Client as HttpClient
from django.test import override_settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from prometheus_client import Histogram

from adapters.sqlite import writers
from profiles import tasks
from profiles.access.actors import SYSTEM
from profiles.api.envelopes import xml_error
from profiles.api.facts import DatabaseFacts
from profiles.ingest.batches import Batch, Status
from profiles.models import Client, ProfileApiSettings
from profiles.rules import faults, metrics
from profiles.rules.metrics import Endpoint, Refusal
from tests.batches import batch_id_of, submit
from tests.integration_tokens import add_integration
from tests.profile_api import PC_ID, THIRD_PARTY_ID, issue, issue_token
from tests.scrape import Sample, label_values, samples, value
from tests.support import bearer, manage, settings_path

METRICS_TOKEN = "metrics-" + "s3cr3t" * 8
SCRAPER = "192.0.2.10"
STRANGER = "203.0.113.99"


@pytest.fixture
def metrics_token(settings: Any) -> str:
    settings.METRICS_TOKEN_DIGEST = hashlib.sha256(METRICS_TOKEN.encode()).hexdigest()
    settings.METRICS_ALLOWED_NETWORKS = ()
    return METRICS_TOKEN


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting on, as in a process with a metrics directory."""
    monkeypatch.setattr(metrics, "recording", True)


def scrape(http: HttpClient | None = None, **headers: str) -> dict[Sample, float]:
    answer = (http or HttpClient()).get("/metrics", **bearer(METRICS_TOKEN), **headers)
    assert answer.status_code == 200, answer.content
    return samples(answer.content.decode())


# Who may scrape


def test_it_is_off_without_a_token_or_networks(db: None, settings: Any) -> None:
    settings.METRICS_TOKEN_DIGEST = ""
    settings.METRICS_ALLOWED_NETWORKS = ()

    answer = HttpClient().get("/metrics", **bearer(METRICS_TOKEN))

    assert answer.status_code == 404
    assert b"targetadmin_" not in answer.content


def test_it_refuses_a_scrape_without_the_token(db: None, metrics_token: str) -> None:
    answer = HttpClient().get("/metrics")

    assert answer.status_code == 401
    assert answer["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"targetadmin_" not in answer.content


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {METRICS_TOKEN[:-1]}",
        f"Bearer {METRICS_TOKEN}x",
        f"Basic {METRICS_TOKEN}",
        f"{METRICS_TOKEN}",
        "Bearer ",
    ],
    ids=["shorter", "longer", "basic scheme", "no scheme", "empty"],
)
def test_it_refuses_any_other_credentials(db: None, metrics_token: str, authorization: str) -> None:
    answer = HttpClient().get("/metrics", HTTP_AUTHORIZATION=authorization)

    assert answer.status_code == 401
    assert b"targetadmin_" not in answer.content


def test_it_answers_the_token_in_prometheus_text_format(db: None, metrics_token: str) -> None:
    answer = HttpClient().get("/metrics", **bearer(metrics_token))

    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/plain; version=")
    assert "no-cache" in answer["Cache-Control"]
    assert ("targetadmin_batch_queue_depth", frozenset()) in samples(answer.content.decode())


def test_it_refuses_an_address_outside_the_allowed_networks(db: None, settings: Any) -> None:
    settings.METRICS_TOKEN_DIGEST = ""
    settings.METRICS_ALLOWED_NETWORKS = ("192.0.2.0/24",)

    outside = HttpClient(REMOTE_ADDR=STRANGER).get("/metrics")
    inside = HttpClient(REMOTE_ADDR=SCRAPER).get("/metrics")

    assert outside.status_code == 403
    assert b"targetadmin_" not in outside.content
    assert inside.status_code == 200


def test_it_believes_a_forwarded_address_only_from_a_trusted_proxy(db: None, settings: Any) -> None:
    settings.METRICS_TOKEN_DIGEST = ""
    settings.METRICS_ALLOWED_NETWORKS = ("192.0.2.0/24",)
    settings.TRUSTED_PROXIES = ("127.0.0.1/32",)
    forwarded = {"HTTP_X_FORWARDED_FOR": SCRAPER}

    assert HttpClient(REMOTE_ADDR="127.0.0.1").get("/metrics", **forwarded).status_code == 200
    assert HttpClient(REMOTE_ADDR=STRANGER).get("/metrics", **forwarded).status_code == 403


def test_it_needs_both_the_token_and_the_network_when_both_are_set(
    db: None, metrics_token: str, settings: Any
) -> None:
    settings.METRICS_ALLOWED_NETWORKS = ("192.0.2.0/24",)

    assert HttpClient(REMOTE_ADDR=SCRAPER).get("/metrics").status_code == 401
    assert HttpClient(REMOTE_ADDR=STRANGER).get(
        "/metrics", **bearer(metrics_token)
    ).status_code == (403)
    assert HttpClient(REMOTE_ADDR=SCRAPER).get("/metrics", **bearer(metrics_token)).status_code == (
        200
    )


def test_it_answers_only_get(db: None, metrics_token: str) -> None:
    answer = HttpClient().post("/metrics", **bearer(metrics_token))

    assert answer.status_code == 405


def test_a_metrics_token_shorter_than_32_characters_stops_the_process(tmp_path: Path) -> None:
    env = os.environ | {"METRICS_TOKEN": "too-short", "TARGETADMIN_VAR_DIR": str(tmp_path)}

    done = manage(env, "check")

    assert done.returncode != 0
    assert "METRICS_TOKEN must be at least 32 characters long" in done.stderr
    assert "too-short" not in done.stderr


def test_allowed_networks_that_are_not_networks_stop_the_process(tmp_path: Path) -> None:
    env = os.environ | {
        "METRICS_ALLOWED_NETWORKS": "192.0.2.0/24,prometheus.internal",
        "TARGETADMIN_VAR_DIR": str(tmp_path),
    }

    done = manage(env, "check")

    assert done.returncode != 0
    assert "METRICS_ALLOWED_NETWORKS must list networks (CIDR)" in done.stderr


def test_a_caller_without_an_address_is_outside_every_network(db: None, settings: Any) -> None:
    settings.METRICS_TOKEN_DIGEST = ""
    settings.METRICS_ALLOWED_NETWORKS = ("0.0.0.0/0", "::/0")

    assert HttpClient(REMOTE_ADDR="").get("/metrics").status_code == 403
    assert HttpClient(REMOTE_ADDR="not-an-address").get("/metrics").status_code == 403


# What it counts


class Counted:
    """What the calls made inside the block added to each sample of /metrics."""

    def __enter__(self) -> Counted:
        self.before = scrape()
        return self

    def __exit__(self, *failure: object) -> None:
        self.after = scrape()

    def added(self, name: str, **labels: str) -> float:
        return value(self.after, name, **labels) - value(self.before, name, **labels)

    def requests(self, endpoint: Endpoint, status: str) -> float:
        return self.added("targetadmin_requests_total", endpoint=endpoint.value, status=status)


def test_it_counts_nothing_while_metrics_are_off(http: HttpClient, metrics_token: str) -> None:
    with Counted() as counted:
        http.get(f"/rest/v1/profiles/{PC_ID}?client=demo")

    assert counted.requests(Endpoint.FETCH, "2xx") == 0


def test_it_counts_the_hot_calls_by_group_and_status_class_through_either_door(
    http: HttpClient, metrics_token: str, recording: None, both_doors: str
) -> None:
    with Counted() as counted:
        http.get(f"/rest/v1/profiles/{PC_ID}?client=demo")
        http.get(f"/rest/v1/profiles/thirdPartyId/{THIRD_PARTY_ID}?client=demo")
        http.get("/rest/v1/profiles/nobody?client=demo")
        http.get(f"/m2/demo/profile/update?mboxPC={PC_ID}&profile.city=Paris")

    assert counted.requests(Endpoint.FETCH, "2xx") == 2
    assert counted.requests(Endpoint.FETCH, "4xx") == 1
    assert counted.requests(Endpoint.UPDATE, "2xx") == 1
    assert counted.added("targetadmin_request_duration_seconds_count", endpoint="fetch") == 3
    assert counted.added("targetadmin_request_duration_seconds_count", endpoint="update") == 1
    assert counted.added("targetadmin_request_duration_seconds_sum", endpoint="fetch") > 0


def test_it_counts_the_other_groups_by_the_view_they_reach(
    demo: Client, alice_signed_in: HttpClient, metrics_token: str, recording: None
) -> None:
    with Counted() as counted:
        alice_signed_in.get("/")
        alice_signed_in.get(settings_path(demo))
        alice_signed_in.get("/demo/target/clients/settings")
        alice_signed_in.post(
            "/api/v1/clients/demo/profiles/bulk",
            data={"profiles": []},
            content_type="application/json",
        )
        HttpClient().get("/m2/demo/profile/batchStatus?batchId=demo-1-00000001")
        HttpClient().get("/nowhere")

    assert counted.requests(Endpoint.PAGES, "3xx") == 1  # home sends alice to her settings
    assert counted.requests(Endpoint.PAGES, "2xx") == 1
    assert counted.requests(Endpoint.MANAGEMENT, "2xx") == 1
    assert counted.requests(Endpoint.JSON_BULK, "2xx") == 1
    assert counted.requests(Endpoint.BATCH, "4xx") == 1
    # The scrape before the calls, and the unknown path.
    assert counted.requests(Endpoint.OTHER, "2xx") == 1
    assert counted.requests(Endpoint.OTHER, "4xx") == 1


def histogram_samples(histogram: Histogram, **labels: str) -> dict[tuple[str, str], float]:
    """``histogram``'s samples with ``labels`` in this process, by suffix and bucket."""
    return {
        (sample.name.removeprefix(family.name), sample.labels.get("le", "")): sample.value
        for family in histogram.collect()
        for sample in family.samples
        if labels.items() <= sample.labels.items() and not sample.name.endswith("_created")
    }


def test_requests_held_and_moved_read_as_if_each_had_been_observed(recording: None) -> None:
    seconds = [0.0005, 0.002, 0.0021, 0.3, 0.3, 7.0, 45.0]
    observed = Histogram("observed", "", buckets=metrics.REQUEST_BUCKETS, registry=None)
    for each in seconds:
        observed.observe(each)
    metrics.HELD.move()
    before = histogram_samples(metrics.REQUEST_DURATION, endpoint="other")

    with metrics.HELD._moving:  # the process's mover waits
        for each in seconds:
            metrics.HELD.count(Endpoint.OTHER, 2, each)
        held = histogram_samples(metrics.REQUEST_DURATION, endpoint="other")
    metrics.HELD.move()
    moved = histogram_samples(metrics.REQUEST_DURATION, endpoint="other")

    assert held == before
    added = {key: moved[key] - before[key] for key in moved}
    assert added == pytest.approx(histogram_samples(observed))


def test_a_request_held_reaches_the_shared_values_within_a_second(recording: None) -> None:
    metrics.HELD.move()
    counted = metrics._REQUEST_CHILDREN[Endpoint.OTHER, 5][0]
    before = counted._value.get()

    metrics.HELD.count(Endpoint.OTHER, 5, 0.01)
    deadline = time.monotonic() + 5 * metrics.MOVE_SECONDS
    while counted._value.get() == before and time.monotonic() < deadline:
        time.sleep(0.05)

    assert counted._value.get() == before + 1


def test_a_forked_process_holds_none_of_its_parents_requests(recording: None) -> None:
    reader, writer = os.pipe()
    with metrics.HELD._moving:  # the process's mover waits
        metrics.HELD.count(Endpoint.OTHER, 2, 0.01)
        held_in_parent = len(metrics.HELD._held)
        child = os.fork()
        if child == 0:
            # Its own locks too: the parent's are held as it forks.
            metrics.HELD.move()
            os.write(writer, str(len(metrics.HELD._held)).encode())
            os._exit(0)
    os.close(writer)
    answered, _, _ = select.select([reader], [], [], 5)
    held_in_child = os.read(reader, 16) if answered else b"no answer: the child is stuck"
    os.close(reader)
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    metrics.HELD.move()

    assert held_in_parent == 1
    assert held_in_child == b"0"


@override_settings(PROFILE_API_AUTH_FAILURE_LIMIT=5, PROFILE_API_AUTH_FAILURE_WINDOW_SECONDS=60)
def test_it_counts_refusals_by_reason(
    http: HttpClient, demo: Client, metrics_token: str, recording: None
) -> None:
    ProfileApiSettings.for_client(demo).set_require_authentication(True, actor=SYSTEM)
    replaced = issue_token(demo, days_ago=3)
    expired = issue_token(demo, days_ago=2, expires_in_days=1)  # replaces it, with no grace
    _, batch_only = add_integration(demo, "batch")
    fetch = f"/rest/v1/profiles/{PC_ID}?client=demo"
    with Counted() as counted:
        http.get(fetch)
        http.get(fetch, **bearer("tpa_not-a-token"))
        http.get(fetch, **bearer(expired))
        http.get(fetch, **bearer(replaced))
        http.get(fetch, **bearer(batch_only))  # valid, without the fetch permission
        ProfileApiSettings.for_client(demo).set_allowed_networks(["192.0.2.0/24"], actor=SYSTEM)
        http.get(fetch, REMOTE_ADDR=STRANGER)
        http.get(fetch, REMOTE_ADDR=STRANGER)
        # Now outside the networks too, 127.0.0.1 spends the last of its five refusals.
        answers = [http.get(fetch).status_code for _ in range(4)]

    def refused(reason: Refusal) -> float:
        return counted.added("targetadmin_auth_refusals_total", reason=reason.value)

    assert answers == [403, 429, 429, 429]
    assert refused(Refusal.MISSING) == 1
    assert refused(Refusal.INVALID) == 1
    assert refused(Refusal.EXPIRED) == 1
    assert refused(Refusal.REVOKED) == 1
    assert refused(Refusal.NETWORK) == 3
    assert refused(Refusal.SCOPE) == 1
    assert refused(Refusal.THROTTLED) == 3


def test_it_counts_batches_their_rows_and_their_times(
    demo: Client,
    client: HttpClient,
    metrics_token: str,
    recording: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with Counted() as counted, django_capture_on_commit_callbacks(execute=True):
        submit(client, "batch=pcId,a\np1,x\np2," + "v" * 257 + "\np3,z\n")
        submit(client, "batch=pcId,a\np1,y\nnobody,y\n", version="v1")

    assert counted.added("targetadmin_batches_total", status="complete") == 2
    assert counted.added("targetadmin_batch_rows_total", outcome="applied") == 3
    assert counted.added("targetadmin_batch_rows_total", outcome="failed") == 1
    assert counted.added("targetadmin_batch_rows_total", outcome="not_found") == 1
    assert counted.added("targetadmin_batch_duration_seconds_count") == 2
    assert counted.added("targetadmin_batch_queue_wait_seconds_count") == 2


def test_it_counts_a_stuck_batch_once(
    demo: Client,
    client: HttpClient,
    metrics_token: str,
    recording: None,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    batch = Batch.objects.get(pk=batch_id_of(submit(client, "batch=pcId,a\np1,x\n")))
    with Counted() as counted, django_capture_on_commit_callbacks(execute=True):
        batch.finish(Status.STUCK)
        batch.finish(Status.STUCK)
        batch.finish(Status.COMPLETE)

    assert counted.added("targetadmin_batches_total", status="stuck") == 1
    assert counted.added("targetadmin_batches_total", status="complete") == 0


def test_it_counts_each_database_fault_answered(
    db: None, metrics_token: str, recording: None
) -> None:
    with Counted() as counted:
        assert xml_error(faults.busy_error()).status == 503
        assert xml_error(faults.disk_full_error()).status == 507

    for fault in metrics.Fault:
        assert counted.added("targetadmin_database_faults_total", fault=fault.value) == 1


def test_it_times_each_writers_wait_in_sqlites_writer_queue(
    db: None, metrics_token: str, recording: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(writers, "wait_observer", metrics.observe_writer_wait)
    lock = writers.WriterLock(str(tmp_path / "database-writers"))

    with Counted() as counted:
        for _ in range(3):
            lock.acquire(timeout=1)
            lock.release()

    assert counted.added("targetadmin_sqlite_writer_wait_seconds_count") == 3
    assert counted.added("targetadmin_sqlite_writer_wait_seconds_bucket", le="+Inf") == 3


def test_the_task_worker_beats_its_heartbeat_from_a_thread_of_its_own(
    db: None, metrics_token: str, recording: None
) -> None:
    started = timezone.now().timestamp()

    stop = threading.Event()
    beating = tasks.start_heartbeat(stop)
    assert beating is not None
    try:
        assert beating.daemon  # it ends with the worker's process
        deadline = time.monotonic() + 10
        while value(scrape(), "targetadmin_worker_last_heartbeat_timestamp_seconds") < started:
            assert time.monotonic() < deadline, "no heartbeat within 10 seconds"
            time.sleep(0.05)
    finally:
        stop.set()
        beating.join(timeout=10)
    assert not beating.is_alive()
    assert get_commands()["db_worker"] == "profiles"  # the command that starts it


def test_no_heartbeat_is_beaten_while_metrics_are_off() -> None:
    assert tasks.start_heartbeat() is None


# Facts read from the database


def test_it_reads_each_clients_token_expiry_and_authentication_from_the_database(
    demo: Client, other_client: Client, metrics_token: str
) -> None:
    ProfileApiSettings.for_client(demo).set_require_authentication(True, actor=SYSTEM)
    token, _ = issue(demo, days=7)

    scraped = scrape()

    assert value(scraped, "targetadmin_token_expiry_timestamp_seconds", client="demo") == (
        pytest.approx(token.expires_at.timestamp())
    )
    assert ("targetadmin_token_expiry_timestamp_seconds", frozenset({("client", "acme")})) not in (
        scraped
    )
    assert value(scraped, "targetadmin_authentication_required", client="demo") == 1
    assert value(scraped, "targetadmin_authentication_required", client="acme") == 0


def test_it_reads_an_expired_token_but_not_one_replaced(demo: Client, metrics_token: str) -> None:
    replaced, _ = issue(demo, days=30)
    current, _ = issue(demo, days=1, now=timezone.now() - timedelta(days=2))

    expiry = value(scrape(), "targetadmin_token_expiry_timestamp_seconds", client="demo")

    assert expiry == pytest.approx(current.expires_at.timestamp())
    assert expiry != pytest.approx(replaced.expires_at.timestamp())


def test_it_reads_the_queue_depth_and_how_long_its_oldest_task_waited(
    demo: Client, settings: Any
) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    tasks.process_batch.enqueue("demo-1-00000001")
    tasks.process_batch.enqueue("demo-2-00000002")
    oldest = DBTaskResult.objects.order_by("enqueued_at").first()
    assert oldest is not None

    facts = {
        family.name: family.samples[0].value
        for family in DatabaseFacts(now=oldest.enqueued_at + timedelta(seconds=90)).collect()
        if family.samples and not family.samples[0].labels
    }

    assert facts == {
        "targetadmin_batch_queue_depth": 2,
        "targetadmin_batch_queue_oldest_age_seconds": pytest.approx(90),
    }


def test_an_empty_queue_has_waited_no_time(db: None) -> None:
    facts = {family.name: family for family in DatabaseFacts().collect()}

    assert facts["targetadmin_batch_queue_depth"].samples[0].value == 0
    assert facts["targetadmin_batch_queue_oldest_age_seconds"].samples[0].value == 0


# What labels may carry


def test_no_label_value_is_a_token_a_profile_id_or_an_address(
    http: HttpClient,
    demo: Client,
    client: HttpClient,
    metrics_token: str,
    recording: None,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.TRUSTED_PROXIES = ("127.0.0.1/32",)
    ProfileApiSettings.for_client(demo).set_require_authentication(True, actor=SYSTEM)
    token = issue_token(demo)
    forwarded = {"HTTP_X_FORWARDED_FOR": STRANGER}
    http.get(f"/rest/v1/profiles/{PC_ID}?client=demo", **bearer(token), **forwarded)
    http.get(f"/rest/v1/profiles/thirdPartyId/{THIRD_PARTY_ID}?client=demo", **forwarded)
    http.get(f"/m2/demo/profile/update?mboxPC={PC_ID}&profile.city=Paris", **bearer(token[:-1]))
    with django_capture_on_commit_callbacks(execute=True):
        submit(client, "batch=thirdPartyId,a\nvisitor-42,x\n", HTTP_AUTHORIZATION=f"Bearer {token}")
    a_profile_id = "visitor-42"

    answer = HttpClient(REMOTE_ADDR="127.0.0.1").get("/metrics", **bearer(metrics_token))
    text = answer.content.decode()
    labels = label_values(samples(text))

    allowed = {
        *(
            member.value
            for enum in (Endpoint, Refusal, metrics.RowOutcome, metrics.Fault)
            for member in enum
        ),
        *(f"{status_class}xx" for status_class in range(1, 10)),
        *(status.value for status in Status),
        "demo",
    }
    assert labels <= allowed
    for secret_or_id in (token, token[:-1], token[-4:], PC_ID, THIRD_PARTY_ID, a_profile_id):
        assert secret_or_id not in text
    for address in (STRANGER, "127.0.0.1"):
        assert address not in text
