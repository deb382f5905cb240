"""Rotation without an outage: the replaced token's grace period and Revoke now, on the
screen, the management API and the command line (docs/tokens.md#rotation-with-a-grace-period)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction
from django.test import Client as HttpClient
from django.utils import timezone

from profiles.access.actors import SYSTEM, Actor
from profiles.models import AuditEvent, Client, ProfileToken
from profiles.tokens import expiry, verification
from profiles.tokens.models import TokenRejected
from tests.fixtures import ALICES_ADDRESS
from tests.profile_api import PC_ID, a_profile, issue, require_authentication
from tests.support import basic, bearer, settings_path

# Through Django's test client and through the fast lane in front of it.
pytestmark = pytest.mark.usefixtures("both_doors")

HOUR = 60 * 60
TOKEN_PATTERN = re.compile(r"tpa_[0-9A-Za-z]{49}")
TOKEN_URL = "/demo/target/authentication/token"
ISSUE_URL = f"{TOKEN_URL}?authorizationScope=profile_api"
PREVIOUS_URL = f"{TOKEN_URL}/previous"


def works(client: Client, plaintext: str, now: Any = None) -> bool:
    try:
        verification.verify(client.pk, plaintext, now)
    except TokenRejected:
        return False
    return True


def actions(client: Client) -> list[str]:
    return list(AuditEvent.objects.filter(client=client).values_list("action", flat=True))


# The model: who works when


def test_immediately_is_the_default_as_in_adobe(demo: Client) -> None:
    old, old_plaintext = issue(demo)
    new, new_plaintext = issue(demo)

    old.refresh_from_db()
    assert old.revoked_at == new.created_at
    assert old.grace_until is None
    assert not works(demo, old_plaintext)
    assert works(demo, new_plaintext)


def test_both_tokens_work_during_the_grace_period(demo: Client) -> None:
    old, old_plaintext = issue(demo)

    new, new_plaintext = issue(demo, grace=HOUR)

    old.refresh_from_db()
    assert old.revoked_at is None
    assert old.grace_until == new.created_at + timedelta(hours=1)
    assert works(demo, old_plaintext)
    assert works(demo, new_plaintext)
    assert list(ProfileToken.objects.filter(client=demo).in_grace()) == [old]
    assert list(ProfileToken.objects.filter(client=demo).active()) == [new]


def test_the_previous_token_fails_the_moment_its_grace_period_ends(demo: Client) -> None:
    old, old_plaintext = issue(demo)
    issue(demo, grace=HOUR)
    old.refresh_from_db()
    assert old.grace_until is not None

    assert works(demo, old_plaintext, now=old.grace_until - timedelta(microseconds=1))
    with pytest.raises(TokenRejected) as refused:
        verification.verify(demo.pk, old_plaintext, now=old.grace_until)
    assert refused.value.reason == "invalid"


def test_a_grace_period_never_outlives_the_token_itself(demo: Client) -> None:
    old, old_plaintext = ProfileToken.objects.issue(demo, expires_in_days=1, actor=SYSTEM)
    ProfileToken.objects.filter(pk=old.pk).update(expires_at=timezone.now() + timedelta(hours=1))

    issue(demo, grace=7 * 24 * HOUR)

    old.refresh_from_db()
    assert old.valid_until == old.expires_at
    with pytest.raises(TokenRejected) as refused:
        verification.verify(demo.pk, old_plaintext, now=old.expires_at)
    assert refused.value.reason == "expired"


def test_an_expired_token_is_not_kept_for_a_grace_period(demo: Client) -> None:
    old, _ = issue(demo)
    ProfileToken.objects.filter(pk=old.pk).update(expires_at=timezone.now())

    issue(demo, grace=HOUR)

    old.refresh_from_db()
    assert (old.grace_until, old.revoked_at is not None) == (None, True)
    assert not ProfileToken.objects.in_grace().exists()


def test_re_generating_again_ends_the_token_in_grace_at_once(demo: Client) -> None:
    first, first_plaintext = issue(demo)
    _, second_plaintext = issue(demo, grace=HOUR)

    third, third_plaintext = issue(demo, grace=HOUR)

    first.refresh_from_db()
    assert first.revoked_at == third.created_at
    assert not works(demo, first_plaintext)
    assert works(demo, second_plaintext)
    assert works(demo, third_plaintext)
    assert ProfileToken.objects.filter(client=demo).unrevoked().count() == 2
    ended = AuditEvent.objects.get(action=AuditEvent.Action.GRACE_ENDED)
    assert (ended.token_last_four, ended.detail) == (
        first.last_four,
        "ended early by a re-generation",
    )


def test_re_generating_immediately_also_ends_the_token_in_grace(demo: Client) -> None:
    _, first_plaintext = issue(demo)
    _, second_plaintext = issue(demo, grace=HOUR)

    issue(demo)

    assert not works(demo, first_plaintext)
    assert not works(demo, second_plaintext)
    assert not ProfileToken.objects.filter(client=demo).in_grace().exists()


def test_it_audits_the_grace_period_it_starts(demo: Client, alice: User) -> None:
    old, _ = issue(demo)

    new, _ = ProfileToken.objects.issue(
        demo,
        expires_in_days=30,
        actor=Actor.person(alice, ALICES_ADDRESS),
        previous_token_grace_seconds=HOUR,
    )

    started = AuditEvent.objects.get(action=AuditEvent.Action.GRACE_STARTED)
    until = (new.created_at + timedelta(hours=1)).isoformat(timespec="seconds")
    assert (started.actor, started.remote_addr, started.token_last_four, started.detail) == (
        alice,
        ALICES_ADDRESS,
        old.last_four,
        f"works until {until}",
    )


@pytest.mark.parametrize("grace", [-1, expiry.MAX_GRACE_SECONDS + 1])
def test_it_refuses_a_grace_period_outside_zero_to_seven_days(demo: Client, grace: int) -> None:
    issue(demo)
    with pytest.raises(ValueError, match="previous_token_grace_seconds"):
        issue(demo, grace=grace)
    assert ProfileToken.objects.count() == 1


def test_the_database_allows_one_token_in_grace_per_client(
    demo: Client, other_client: Client
) -> None:
    later = timezone.now() + timedelta(days=1)

    def token(client: Client, char: str, **fields: Any) -> ProfileToken:
        return ProfileToken.objects.create(
            client=client, digest=char * 64, last_four=char * 4, expires_at=later, **fields
        )

    token(demo, "a")
    token(demo, "b", grace_until=later)
    token(other_client, "c", grace_until=later)
    token(demo, "d", grace_until=later, revoked_at=later)

    with pytest.raises(IntegrityError), transaction.atomic():
        token(demo, "e", grace_until=later)
    with pytest.raises(IntegrityError), transaction.atomic():
        token(demo, "f")


def test_revoke_previous_ends_the_grace_period_at_once_audited(demo: Client, alice: User) -> None:
    old, old_plaintext = issue(demo)
    _, new_plaintext = issue(demo, grace=HOUR)

    revoked = ProfileToken.objects.revoke_previous(demo, actor=Actor.person(alice, ALICES_ADDRESS))

    assert revoked == old
    assert not works(demo, old_plaintext)
    assert works(demo, new_plaintext)
    event = AuditEvent.objects.filter(client=demo).first()
    assert event is not None
    assert (event.action, event.actor, event.remote_addr, event.token_last_four) == (
        AuditEvent.Action.PREVIOUS_TOKEN_REVOKED,
        alice,
        ALICES_ADDRESS,
        old.last_four,
    )
    assert ProfileToken.objects.revoke_previous(demo, actor=Actor.person(alice)) is None


def test_revoke_previous_ends_only_the_token_it_names(demo: Client) -> None:
    issue(demo)
    issue(demo, grace=HOUR)
    shown = ProfileToken.objects.in_grace().get()
    issue(demo, grace=HOUR)  # another tab: shown ended, a new one is in grace

    assert ProfileToken.objects.revoke_previous(demo, actor=SYSTEM, token_id=shown.pk) is None
    assert ProfileToken.objects.in_grace().exists()


def test_a_sweep_records_each_grace_period_that_ran_out_once(demo: Client) -> None:
    old, _ = issue(demo)
    issue(demo, grace=HOUR)
    old.refresh_from_db()
    assert old.grace_until is not None

    assert ProfileToken.objects.end_finished_graces(now=old.grace_until, actor=SYSTEM) == 1
    assert ProfileToken.objects.end_finished_graces(now=old.grace_until, actor=SYSTEM) == 0

    old.refresh_from_db()
    assert old.revoked_at == old.grace_until
    event = AuditEvent.objects.get(action=AuditEvent.Action.GRACE_ENDED)
    assert (event.actor_label, event.detail) == ("targetadmin", "grace period over")


# The gate


def fetch(http: HttpClient, token: str) -> int:
    return http.get(f"/rest/v1/profiles/{PC_ID}?client=demo", **bearer(token)).status_code


def test_both_tokens_pass_the_gate_until_revoke_now(demo: Client, alice: User) -> None:
    a_profile(demo)
    require_authentication(demo)
    _, old = issue(demo)
    _, new = issue(demo, grace=HOUR)
    http = HttpClient()

    assert (fetch(http, old), fetch(http, new)) == (200, 200)
    ProfileToken.objects.revoke_previous(demo, actor=Actor.person(alice))
    assert (fetch(http, old), fetch(http, new)) == (401, 200)


def test_turning_authentication_off_and_on_does_not_revive_an_ended_previous_token(
    demo: Client, alice: User
) -> None:
    a_profile(demo)
    require_authentication(demo)
    _, revoked = issue(demo)
    _, lapsed = issue(demo, grace=HOUR)
    _, current = issue(demo, grace=HOUR)  # revoked ends at once, lapsed is in grace
    ProfileToken.objects.in_grace().update(grace_until=timezone.now())  # lapsed runs out
    http = HttpClient()

    require_authentication(demo, enabled=False)
    require_authentication(demo)

    assert (fetch(http, revoked), fetch(http, lapsed), fetch(http, current)) == (401, 401, 200)


# The screen


def test_the_confirmation_offers_when_the_current_token_stops_working(
    alice_signed_in: HttpClient, demo: Client
) -> None:
    require_authentication(demo)
    issue(demo)

    for html in (
        alice_signed_in.get(settings_path(demo)).content.decode(),  # the dialog
        alice_signed_in.post(
            settings_path(demo), {"expires_in_days": "30", "regenerate": "ask"}
        ).content.decode(),
    ):
        assert "Current token stops working" in html
        options = re.findall(r'<option value="(\d+)"( selected)?>([^<]+)</option>', html)
        grace = [(value, label) for value, _, label in options if label.startswith("I")]
        assert grace == [
            ("0", "Immediately"),
            ("3600", "In 1 hour"),
            ("86400", "In 24 hours"),
            ("604800", "In 7 days"),
        ]
        assert ("0", " selected", "Immediately") in options
        assert 'form="regenerate-form"' in html


def test_it_re_generates_with_a_grace_period_and_shows_the_previous_token(
    alice_signed_in: HttpClient, demo: Client
) -> None:
    require_authentication(demo)
    old, old_plaintext = issue(demo)

    response = alice_signed_in.post(
        settings_path(demo),
        {"expires_in_days": "90", "previous_token_grace": "3600", "regenerate": "confirmed"},
    )

    (new_plaintext,) = TOKEN_PATTERN.findall(response.content.decode())
    assert works(demo, old_plaintext)
    assert works(demo, new_plaintext)
    html = alice_signed_in.get(settings_path(demo)).content.decode()
    assert "Previous token, in its grace period" in html
    assert f"tpa_…{old.last_four}" in html
    assert re.search(r"Stops Working In</dt>\s*<dd[^>]*>\s*0 days, 0 hours, 5\d minutes", html)
    assert "Not used since it was replaced (never used)" in html
    assert 'name="revoke_previous" value="ask"' in html
    assert "Revoke now" in html


def test_generate_ignores_a_grace_period_when_no_token_works(
    alice_signed_in: HttpClient, demo: Client
) -> None:
    require_authentication(demo)
    expired, _ = issue(demo)
    ProfileToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now())

    alice_signed_in.post(
        settings_path(demo),
        {"expires_in_days": "90", "previous_token_grace": "3600", "generate": "1"},
    )

    assert not ProfileToken.objects.in_grace().exists()


def test_it_refuses_a_grace_period_the_screen_does_not_offer(
    alice_signed_in: HttpClient, demo: Client
) -> None:
    require_authentication(demo)
    current, _ = issue(demo)

    response = alice_signed_in.post(
        settings_path(demo),
        {"expires_in_days": "90", "previous_token_grace": "60", "regenerate": "confirmed"},
    )

    assert response.status_code == 400
    assert list(ProfileToken.objects.unrevoked()) == [current]


def test_the_card_says_when_the_previous_token_is_still_in_use(
    alice_signed_in: HttpClient, demo: Client
) -> None:
    now = timezone.now()
    old, _ = issue(demo, now=now - timedelta(minutes=30))
    issue(demo, grace=HOUR, now=now - timedelta(minutes=10))

    def used(minutes_ago: int) -> str:
        ProfileToken.objects.filter(pk=old.pk).update(
            last_used_at=now - timedelta(minutes=minutes_ago, seconds=5),
            last_used_from="192.0.2.9",
        )
        return alice_signed_in.get(settings_path(demo)).content.decode()

    assert "Still in use: last used 2 minutes ago from 192.0.2.9" in used(2)
    assert "Not used since it was replaced (last used 12 minutes ago from 192.0.2.9)" in used(12)


def test_revoke_now_asks_then_revokes_audited(
    alice_signed_in: HttpClient, demo: Client, alice: User
) -> None:
    old, old_plaintext = issue(demo)
    issue(demo, grace=HOUR)

    asked = alice_signed_in.post(
        settings_path(demo), {"previous_token": old.pk, "revoke_previous": "ask"}
    )

    assert asked.status_code == 200
    assert "Revoke the previous token now?" in asked.content.decode()
    assert works(demo, old_plaintext)

    done = alice_signed_in.post(
        settings_path(demo), {"previous_token": old.pk, "revoke_previous": "confirmed"}, follow=True
    )

    assert done.redirect_chain == [(settings_path(demo), 302)]
    assert (
        f"Revoked the previous token tpa_…{old.last_four}: calls that use it now fail."
        in done.content.decode()
    )
    assert not works(demo, old_plaintext)
    event = AuditEvent.objects.filter(client=demo).first()
    assert event is not None
    assert (event.action, event.actor, event.remote_addr) == (
        AuditEvent.Action.PREVIOUS_TOKEN_REVOKED,
        alice,
        ALICES_ADDRESS,
    )
    assert "Previous token, in its grace period" not in done.content.decode()


def test_revoke_now_from_a_stale_page_revokes_nothing(
    alice_signed_in: HttpClient, demo: Client
) -> None:
    issue(demo)
    issue(demo, grace=HOUR)
    shown = ProfileToken.objects.in_grace().get()
    issue(demo, grace=HOUR)
    events = AuditEvent.objects.count()

    response = alice_signed_in.post(
        settings_path(demo),
        {"previous_token": shown.pk, "revoke_previous": "confirmed"},
        follow=True,
    )

    assert "That previous token no longer works" in response.content.decode()
    assert ProfileToken.objects.in_grace().count() == 1
    assert AuditEvent.objects.count() == events


def test_revoke_now_is_for_approvers_only(bob: User, demo: Client) -> None:
    old, old_plaintext = issue(demo)
    issue(demo, grace=HOUR)
    http = HttpClient()
    http.force_login(bob)

    response = http.post(
        settings_path(demo), {"previous_token": old.pk, "revoke_previous": "confirmed"}
    )

    assert response.status_code == 403
    assert works(demo, old_plaintext)


# The management API


def post(client: HttpClient, url: str = ISSUE_URL, **kwargs: Any) -> Any:
    return client.post(url, headers=basic("alice"), **kwargs)


def test_the_api_keeps_the_previous_token_for_the_grace_period_asked_in_the_query(
    client: HttpClient, alice: User, demo: Client
) -> None:
    old = post(client).json()
    assert "previousTokenValidUntil" not in old

    new = post(client, f"{ISSUE_URL}&previousTokenGraceSeconds=3600")

    assert new.status_code == 201
    body = new.json()
    created = ProfileToken.objects.active().get().created_at
    assert body["previousTokenValidUntil"] == (created + timedelta(hours=1)).isoformat()
    assert works(demo, old["accessToken"])
    assert works(demo, body["accessToken"])


def test_the_api_takes_the_grace_period_in_a_json_body(
    client: HttpClient, alice: User, demo: Client
) -> None:
    old = post(client).json()["accessToken"]

    new = post(
        client,
        data=json.dumps({"previousTokenGraceSeconds": 86400}),
        content_type="application/vnd.adobe.target.v1+json",
    )

    assert new.status_code == 201
    assert "previousTokenValidUntil" in new.json()
    assert works(demo, old)


@pytest.mark.parametrize(
    ("query", "body", "content_type", "status", "message"),
    [
        ("&previousTokenGraceSeconds=604801", None, None, 400, "from 0 to 604800"),
        ("&previousTokenGraceSeconds=-1", None, None, 400, "from 0 to 604800"),
        ("&previousTokenGraceSeconds=an+hour", None, None, 400, "whole number of seconds"),
        ("", b'{"previousTokenGraceSeconds": "3600"}', "application/json", 400, "whole number"),
        ("", b'{"previousTokenGraceSeconds": 36.5}', "application/json", 400, "whole number"),
        ("", b'{"previousTokenGraceSeconds": true}', "application/json", 400, "whole number"),
        ("", b'{"graceSeconds": 3600}', "application/json", 400, "Unknown field(s): graceSeconds"),
        ("", b"[3600]", "application/json", 400, "must be a JSON object"),
        (
            "&previousTokenGraceSeconds=60",
            b'{"previousTokenGraceSeconds": 60}',
            "application/json",
            400,
            "not in both",
        ),
        (
            "",
            b"previousTokenGraceSeconds=3600",
            "application/x-www-form-urlencoded",
            415,
            "not 'application/x-www-form-urlencoded'",
        ),
        ("", b'{"previousTokenGraceSeconds": 60}', "text/plain", 415, "not 'text/plain'"),
    ],
)
def test_the_api_refuses_a_bad_grace_period_and_changes_nothing(
    client: HttpClient,
    alice: User,
    query: str,
    body: bytes | None,
    content_type: str | None,
    status: int,
    message: str,
) -> None:
    current = post(client).json()["accessToken"]
    extra: dict[str, Any] = {}
    if body is not None:
        extra = {"data": body, "content_type": content_type}

    response = post(client, ISSUE_URL + query, **extra)

    assert response.status_code == status, response.content
    assert message in response.json()["errors"][0]["message"]
    assert ProfileToken.objects.get(revoked_at__isnull=True).last_four == current[-4:]


def test_the_api_describes_the_previous_token_while_it_is_in_grace(
    client: HttpClient, alice: User, demo: Client
) -> None:
    post(client)
    post(client, f"{ISSUE_URL}&previousTokenGraceSeconds=3600")
    previous = ProfileToken.objects.in_grace().get()

    body = client.get(TOKEN_URL, headers=basic("alice")).json()

    assert body["previousToken"] == {
        "lastFour": previous.last_four,
        "validUntil": previous.valid_until.isoformat(),
        "lastUsedAt": None,
        "lastUsedFrom": None,
    }
    ProfileToken.objects.revoke_previous(demo, actor=Actor.person(alice))
    assert "previousToken" not in client.get(TOKEN_URL, headers=basic("alice")).json()


def test_the_api_revokes_the_previous_token_with_delete(
    client: HttpClient, alice: User, demo: Client
) -> None:
    old = post(client).json()["accessToken"]
    new = post(client, f"{ISSUE_URL}&previousTokenGraceSeconds=3600").json()["accessToken"]

    response = client.delete(PREVIOUS_URL, headers=basic("alice"))

    assert response.status_code == 204
    assert response.content == b""
    assert "no-store" in response["Cache-Control"]
    assert not works(demo, old)
    assert works(demo, new)
    assert actions(demo)[0] == AuditEvent.Action.PREVIOUS_TOKEN_REVOKED
    again = client.delete(PREVIOUS_URL, headers=basic("alice"))
    assert again.status_code == 404
    assert again.json()["errors"][0] == {
        "errorCode": "Token.PreviousNotFound",
        "message": "Client 'demo' has no previous profile authentication token in its grace "
        "period.",
    }


def test_only_approvers_may_revoke_the_previous_token(
    client: HttpClient, alice: User, bob: User, demo: Client
) -> None:
    old = post(client).json()["accessToken"]
    post(client, f"{ISSUE_URL}&previousTokenGraceSeconds=3600")

    assert client.delete(PREVIOUS_URL, headers=basic("bob")).status_code == 403
    refused = client.get(PREVIOUS_URL, headers=basic("alice"))
    assert (refused.status_code, refused["Allow"]) == (405, "DELETE")
    assert works(demo, old)


# The command line


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_line_keeps_the_previous_token_for_a_grace_period(demo: Client) -> None:
    old = run("generate_token", "demo")[0].strip()

    out, err = run("generate_token", "demo", "--previous-token-grace-seconds", "3600")

    previous = ProfileToken.objects.in_grace().get()
    assert works(demo, old)
    assert works(demo, out.strip())
    assert (
        f"the previous token tpa_…{old[-4:]} keeps working until "
        f"{previous.valid_until.isoformat()}" in err
    )
    status = run("token_status", "demo")[0]
    assert f"Previous token: tpa_…{old[-4:]} (in its grace period)" in status
    assert "Previous token last used: never" in status

    revoked = run("revoke_token", "demo", "--previous")[0]

    assert revoked == f"Revoked the previous token tpa_…{old[-4:]} of demo.\n"
    assert not works(demo, old)
    assert run("revoke_token", "demo", "--previous")[0] == (
        "demo has no previous token in its grace period.\n"
    )


def test_revoking_the_current_token_says_a_previous_one_still_works(demo: Client) -> None:
    run("generate_token", "demo")
    run("generate_token", "demo", "--previous-token-grace-seconds", "60")

    out = run("revoke_token", "demo")[0]

    assert "still works until" in out
    assert "`revoke_token demo --previous` ends it now." in out


@pytest.mark.parametrize("seconds", ["-1", "604801"])
def test_the_command_line_refuses_a_grace_period_out_of_range(demo: Client, seconds: str) -> None:
    with pytest.raises(CommandError, match="between 0 and 604800"):
        run("generate_token", "demo", "--previous-token-grace-seconds", seconds)
    assert not ProfileToken.objects.exists()


def test_a_use_just_before_the_replacement_counts_as_still_in_use(
    alice_signed_in: HttpClient, demo: Client
) -> None:
    # Uses within a minute of a recorded one are not written: one at 9:59:40 may hide
    # another at 10:00:20, after a replacement at 10:00.
    now = timezone.now()
    old, _ = issue(demo, now=now - timedelta(minutes=30))
    issue(demo, grace=HOUR, now=now - timedelta(minutes=1))
    ProfileToken.objects.filter(pk=old.pk).update(
        last_used_at=now - timedelta(minutes=1, seconds=20), last_used_from="192.0.2.9"
    )

    html = alice_signed_in.get(settings_path(demo)).content.decode()

    assert "Still in use: last used 1 minute ago from 192.0.2.9" in html
