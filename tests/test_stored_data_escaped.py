"""Stored data is shown, never run: attribute names and values, ids, client names and audit
text holding HTML or script appear escaped on every page and in the Django admin."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import User
from django.test import Client as HttpClient

from profiles.access.actors import Actor
from profiles.ingest.batches import Batch, BatchFailure
from profiles.models import AuditEvent, Client, Membership, Profile, Role
from tests.batches import batch_id_of, submit
from tests.support import signed_in

HOSTILE_NAME = "<script>alert('name')</script>"
HOSTILE_VALUE = '"><img src=x onerror=alert(1)>'
HOSTILE_ID = "<svg onload=alert(2)>"
HOSTILE_TEXT = "<iframe src=javascript:alert(3)></iframe>"
RAW = (HOSTILE_NAME, HOSTILE_VALUE, HOSTILE_ID, HOSTILE_TEXT)


class Markup(HTMLParser):
    """The tags and attributes a page really has once the browser parses it."""

    def __init__(self) -> None:
        super().__init__()
        self.injected: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "iframe":
            self.injected.append(f"<{tag}>")
        if tag in {"script", "img"} and not (attributes.get("src") or "").startswith("/"):
            self.injected.append(f"<{tag} src={attributes.get('src')!r}>")
        self.injected += [f"<{tag} {name}>" for name, _ in attrs if name.startswith("on")]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def assert_shown_not_run(response: Any, *shown: str) -> None:
    html = response.content.decode()
    assert response.status_code == 200
    for raw in RAW:
        assert raw not in html
    markup = Markup()
    markup.feed(html)
    assert markup.injected == []
    text = "".join(markup.text)
    for value in shown:
        assert value in text, f"{value!r} is not shown as text"


@pytest.fixture
def hostile_profile(demo: Client) -> Profile:
    """Stored through the single update API, which accepts any printable name and value."""
    Profile.objects.create(client=demo, pc_id="1368007744041-575948.01_00", third_party_id="t-1")
    query = urlencode(
        {"mbox3rdPartyId": "t-1", f"profile.{HOSTILE_NAME}": HOSTILE_VALUE, "profile.x": HOSTILE_ID}
    )
    assert HttpClient().post(f"/m2/demo/profile/update?{query}").status_code == 200
    return Profile.objects.get(client=demo, third_party_id="t-1")


def test_the_profiles_page_shows_hostile_names_and_values_as_text(
    alice: User, hostile_profile: Profile
) -> None:
    assert hostile_profile.attributes[HOSTILE_NAME]["value"] == HOSTILE_VALUE

    response = signed_in(alice).get("/clients/demo/profiles/?by=thirdPartyId&profile_id=t-1")

    assert_shown_not_run(response, HOSTILE_NAME, HOSTILE_VALUE, HOSTILE_ID)


def test_the_profiles_page_echoes_a_hostile_search_as_text(alice: User) -> None:
    query = urlencode({"by": "thirdPartyId", "profile_id": HOSTILE_ID})

    response = signed_in(alice).get(f"/clients/demo/profiles/?{query}")

    assert_shown_not_run(response, HOSTILE_ID)
    assert "No profile found" in response.content.decode()


def test_the_settings_screen_shows_hostile_audit_text_and_client_names_as_text(
    alice: User, demo: Client
) -> None:
    demo.name = HOSTILE_NAME
    demo.save()
    AuditEvent.record(
        demo,
        AuditEvent.Action.ROLE_GRANTED,
        actor=Actor.named(HOSTILE_ID),
        detail=HOSTILE_TEXT,
    )

    response = signed_in(alice).get("/setup/demo/implementation/")

    assert_shown_not_run(response, HOSTILE_NAME, HOSTILE_ID, HOSTILE_TEXT)


def test_the_home_page_shows_hostile_client_names_as_text(
    alice: User, demo: Client, other_client: Client
) -> None:
    other_client.name = HOSTILE_VALUE
    other_client.save()
    Membership.objects.create(user=alice, client=other_client, role=Role.OBSERVER)

    response = signed_in(alice).get("/")

    assert_shown_not_run(response, HOSTILE_VALUE)


def test_the_admin_shows_hostile_audit_text_and_client_names_as_text(demo: Client) -> None:
    root = User.objects.create_superuser("root", password="correct horse battery staple")
    demo.name = HOSTILE_NAME
    demo.save()
    event = AuditEvent.record(
        demo,
        AuditEvent.Action.ROLE_GRANTED,
        actor=Actor.named(HOSTILE_ID),
        detail=HOSTILE_TEXT,
    )
    operator = signed_in(root)

    assert_shown_not_run(operator.get("/admin/profiles/client/"), HOSTILE_NAME)
    assert_shown_not_run(operator.get(f"/admin/profiles/client/{demo.pk}/change/"))
    assert_shown_not_run(operator.get("/admin/profiles/auditevent/"), HOSTILE_ID)
    assert_shown_not_run(
        operator.get(f"/admin/profiles/auditevent/{event.pk}/change/"), HOSTILE_ID, HOSTILE_TEXT
    )


@pytest.fixture
def hostile_batch(demo: Client) -> Batch:
    """A batch whose failed rows carry HTML in their ids and in the messages that quote them,
    sent with HTML in its idempotency key."""
    body = (
        "batch=pcId,a\n"
        f"{HOSTILE_ID},x,{HOSTILE_VALUE}\n"  # one cell too many: the raw line is kept
        f"{HOSTILE_NAME},x,y\n"
    )
    response = submit(HttpClient(), body, HTTP_IDEMPOTENCY_KEY=HOSTILE_TEXT)
    batch = Batch.objects.get(pk=batch_id_of(response))
    assert set(BatchFailure.objects.values_list("profile_id", flat=True)) == {
        HOSTILE_ID,
        HOSTILE_NAME,
    }
    return batch


def test_the_batches_pages_show_hostile_failed_rows_as_text(
    alice: User, hostile_batch: Batch
) -> None:
    http = signed_in(alice)

    assert_shown_not_run(http.get("/clients/demo/batches/"))
    assert_shown_not_run(
        http.get(f"/clients/demo/batches/{hostile_batch.pk}/"), HOSTILE_ID, HOSTILE_NAME
    )


def test_the_admin_shows_a_hostile_batch_as_text(hostile_batch: Batch) -> None:
    root = User.objects.create_superuser("root", password="correct horse battery staple")
    operator = signed_in(root)

    assert_shown_not_run(operator.get("/admin/profiles/batch/"))
    assert_shown_not_run(
        operator.get(f"/admin/profiles/batch/{hostile_batch.pk}/change/"), HOSTILE_TEXT
    )
