"""Each token's calls counted per UTC day in the process, written at most once a minute per
token in one statement, and kept 90 days (docs/tokens.md#usage)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from profiles.access.actors import SYSTEM
from profiles.models import Client, Integration, ProfileApiSettings, ProfileToken, TokenUsage
from profiles.tokens import reminders, secret, tally, usage, verification
from profiles.tokens.permissions import Permission
from profiles.tokens.usage import Outcome
from tests.profile_api import PC_ID, a_profile, issue, require_authentication

ADDRESS = "203.0.113.5"
START = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.fixture
def guarded(demo: Client) -> Client:
    a_profile(demo)
    require_authentication(demo)
    return demo


def fetch(token: str, code: str = "demo", address: str = ADDRESS) -> int:
    http = HttpClient(REMOTE_ADDR=address)
    response = http.get(
        f"/rest/v1/profiles/{PC_ID}?client={code}", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    return response.status_code


def usage_writes(queries: CaptureQueriesContext) -> int:
    return sum("profiles_tokenusage" in q["sql"] for q in queries.captured_queries)


def stored(client: Client, integration: Integration | None = None) -> dict[str, int]:
    row = TokenUsage.objects.get(client=client, integration=integration)
    return {name: getattr(row, name) for name in usage.COUNTERS}


def an_integration_token(client: Client, allowed: Permission) -> tuple[Integration, str]:
    integration, _, plaintext = ProfileToken.objects.add_integration(
        client, name="CRM sync", granted=allowed, expires_in_days=30, actor=SYSTEM
    )
    return integration, plaintext


def only(**counted: int) -> dict[str, int]:
    return dict.fromkeys(usage.COUNTERS, 0) | counted


@pytest.mark.usefixtures("both_doors")
def test_it_counts_an_accepted_call_in_memory_without_a_query(
    guarded: Client, counts: tally.Tally
) -> None:
    _, plaintext = issue(guarded)

    with CaptureQueriesContext(connection) as queries:
        assert fetch(plaintext) == 200
        assert fetch(plaintext) == 200

    assert usage_writes(queries) == 0
    assert counts.write_all() == 1
    assert stored(guarded) == only(accepted=2, fetch_calls=2)


def test_it_writes_a_tokens_counts_at_most_once_a_minute_in_one_statement(
    guarded: Client, counts: tally.Tally
) -> None:
    _, plaintext = issue(guarded)

    with CaptureQueriesContext(connection) as queries:
        for seconds in (0, 1, 30, 59):
            verification.authenticate("demo", [plaintext], START + timedelta(seconds=seconds))
    assert usage_writes(queries) == 0

    with CaptureQueriesContext(connection) as queries:
        verification.authenticate("demo", [plaintext], START + timedelta(seconds=60))
        verification.authenticate("demo", [plaintext], START + timedelta(seconds=61))
    assert usage_writes(queries) == 1
    assert stored(guarded) == only(accepted=5)
    assert counts.write_due(START + timedelta(seconds=119)) == 0
    assert counts.write_due(START + timedelta(seconds=120)) == 1
    assert stored(guarded) == only(accepted=6)


def test_the_writer_writes_what_a_token_no_longer_called_holds_within_a_minute(
    guarded: Client, counts: tally.Tally
) -> None:
    _, plaintext = issue(guarded)
    verification.authenticate("demo", [plaintext], START)

    assert counts.write_due(START + timedelta(seconds=59)) == 0
    assert not TokenUsage.objects.exists()
    assert counts.write_due(START + timedelta(seconds=60)) == 1
    assert stored(guarded) == only(accepted=1)
    assert counts.write_all() == 0  # nothing left


def test_counts_add_to_the_stored_ones_as_other_processes_write(
    guarded: Client, counts: tally.Tally
) -> None:
    token, _ = issue(guarded)
    another_process = tally.Tally()
    for _ in range(3):
        counts.count(token, Outcome.ACCEPTED, Permission.FETCH, START)
    another_process.count(token, Outcome.EXPIRED, Permission.UPDATE, START)

    assert counts.write_all(START) == 1
    assert another_process.write_all(START) == 1

    assert stored(guarded) == only(accepted=3, refused_expired=1, fetch_calls=3, update_calls=1)


def test_a_write_spanning_midnight_adds_to_each_utc_day(
    guarded: Client, counts: tally.Tally
) -> None:
    token, _ = issue(guarded)
    before_midnight = datetime(2026, 12, 6, 23, 59, 30, tzinfo=UTC)
    counts.count(token, Outcome.ACCEPTED, now=before_midnight)
    counts.count(token, Outcome.ACCEPTED, now=before_midnight + timedelta(minutes=1))

    days = usage.days_of(guarded, None, 2, before_midnight + timedelta(minutes=1))

    assert [(day.day.isoformat(), day.accepted) for day in days] == [
        ("2026-12-06", 1),
        ("2026-12-07", 1),
    ]


def test_the_clients_own_token_is_one_series_across_its_re_generations(
    guarded: Client, counts: tally.Tally
) -> None:
    _, first = issue(guarded)
    verification.authenticate("demo", [first], START)
    _, second = issue(guarded)
    verification.authenticate("demo", [second], START + timedelta(seconds=1))
    with pytest.raises(verification.Refused):
        verification.authenticate("demo", [first], START + timedelta(seconds=2))

    counts.write_all(START)

    assert stored(guarded) == only(accepted=2, refused_revoked=1)


def test_it_counts_refusals_by_reason(guarded: Client, counts: tally.Tally) -> None:
    _, expired_plaintext = issue(guarded, 1, now=START - timedelta(days=2))
    with pytest.raises(verification.Refused):
        verification.authenticate("demo", [expired_plaintext], START)
    ProfileToken.objects.revoke_active(guarded, actor=SYSTEM)
    with pytest.raises(verification.Refused):
        verification.authenticate("demo", [expired_plaintext], START)
    _, plaintext = issue(guarded)
    ProfileApiSettings.for_client(guarded).set_allowed_networks(["192.0.2.0/24"], actor=SYSTEM)
    with pytest.raises(verification.NetworkRefused):
        verification.authenticate("demo", [plaintext], START, address=ADDRESS)

    counts.write_all(START)

    assert stored(guarded) == only(refused_expired=1, refused_revoked=1, refused_network=1)


def test_a_token_unknown_or_of_another_client_is_counted_for_no_one(
    guarded: Client, other_client: Client, counts: tally.Tally
) -> None:
    _, theirs = issue(other_client)

    for presented in (secret.generate(), theirs, "not a token"):
        with pytest.raises(verification.Refused):
            verification.authenticate("demo", [presented], START)

    assert counts.write_all() == 0  # nothing left


def test_a_client_without_authentication_counts_nothing(demo: Client, counts: tally.Tally) -> None:
    a_profile(demo)
    _, plaintext = issue(demo)

    assert fetch(plaintext) == 200

    assert counts.write_all() == 0  # nothing left


def test_an_integrations_calls_are_counted_apart_from_the_clients_token(
    guarded: Client, counts: tally.Tally
) -> None:
    _, own_token = issue(guarded)
    integration, integration_token = an_integration_token(guarded, Permission.FETCH)

    verification.authenticate("demo", [integration_token], START)
    verification.authenticate("demo", [integration_token], START)
    verification.authenticate("demo", [own_token], START)
    assert counts.write_all(START) == 2

    assert stored(guarded, integration) == only(accepted=2)
    assert stored(guarded) == only(accepted=1)


@pytest.mark.usefixtures("both_doors")
def test_a_call_outside_a_tokens_permissions_is_counted_as_refused_for_scope(
    guarded: Client, counts: tally.Tally
) -> None:
    integration, fetch_only = an_integration_token(guarded, Permission.FETCH)
    http = HttpClient(REMOTE_ADDR=ADDRESS)

    assert fetch(fetch_only) == 200
    update = http.get(
        "/m2/demo/profile/update?mbox3rdPartyId=u-1&profile.tier=gold",
        HTTP_AUTHORIZATION=f"Bearer {fetch_only}",
    )
    assert update.status_code == 403
    counts.write_all()

    assert stored(guarded, integration) == only(
        accepted=1, refused_scope=1, fetch_calls=1, update_calls=1
    )


def test_a_failed_write_is_logged_with_what_it_lost_and_never_fails_the_call(
    guarded: Client,
    counts: tally.Tally,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, plaintext = issue(guarded)
    # A statement the database refuses, as a full disk or a lost connection would.
    broken = {
        key: statement.replace("profiles_tokenusage", "no_such_table", 1)
        for key, statement in tally.UPSERT.items()
    }
    monkeypatch.setattr(tally, "UPSERT", broken)
    verification.authenticate("demo", [plaintext], START)

    assert verification.authenticate("demo", [plaintext], START + timedelta(minutes=1)) == guarded

    assert "could not write token usage" in caplog.text
    assert f"client={guarded.pk} integration=- lost=2" in caplog.text
    assert plaintext not in caplog.text
    assert not TokenUsage.objects.exists()


def test_usage_of_days_without_calls_is_zero_oldest_first(
    guarded: Client, counts: tally.Tally
) -> None:
    token, _ = issue(guarded)
    counts.count(token, Outcome.SCOPE, Permission.BATCH, START - timedelta(days=2))
    counts.write_all(START)

    days = usage.days_of(guarded, None, 3, START)

    assert [day.as_json() for day in days] == [
        {
            "date": "2026-12-04",
            "accepted": 0,
            "refused": {"expired": 0, "revoked": 0, "scope": 1, "network": 0},
        },
        {
            "date": "2026-12-05",
            "accepted": 0,
            "refused": {"expired": 0, "revoked": 0, "scope": 0, "network": 0},
        },
        {
            "date": "2026-12-06",
            "accepted": 0,
            "refused": {"expired": 0, "revoked": 0, "scope": 0, "network": 0},
        },
    ]


def test_the_reminder_sweep_keeps_90_days_of_usage(guarded: Client, counts: tally.Tally) -> None:
    token, _ = issue(guarded)
    for days_ago in (0, 89, 90, 200):
        counts.count(token, Outcome.ACCEPTED, now=START - timedelta(days=days_ago))
    counts.write_all(START)

    done = reminders.sweep(START)

    assert done.usage_days_pruned == 2
    kept = sorted(TokenUsage.objects.values_list("day", flat=True))
    assert kept == [(START - timedelta(days=89)).date(), START.date()]


@pytest.mark.django_db(transaction=True)
def test_the_writer_thread_writes_the_counts_due_without_a_call(counts: tally.Tally) -> None:
    demo = Client.objects.create(code="demo", name="Demo")
    token, _ = issue(demo)
    a_minute_ago = timezone.now() - timedelta(minutes=1)
    counts.count(token, Outcome.ACCEPTED, Permission.FETCH, a_minute_ago)

    writer = tally.start_writer(timedelta(milliseconds=20))
    try:
        deadline = time.monotonic() + 10
        while not TokenUsage.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        writer.stop()

    assert stored(demo) == only(accepted=1, fetch_calls=1)
    assert counts.write_all() == 0  # nothing left
