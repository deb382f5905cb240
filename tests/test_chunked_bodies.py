"""A body sent with ``Transfer-Encoding: chunked`` is read as one sent with a Content-Length.

Every endpoint that reads a body reads a chunked one under the same limits
(docs/api.md#request-bodies). Django's test client cannot send one, so these requests go as
written over a socket to gunicorn as ``make run`` starts it (``tests/live_server.py``), on
the suite's database: a fresh SQLite file, or a fresh database on the suite's PostgreSQL
server. The requests are the bad-input catalogue's cases sent to gunicorn; those sent to a
server that cannot de-chunk (411) are in ``tests/test_bad_input_catalogue.py``. The pages,
which read their forms through Django, refuse a chunked body (411).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.middleware.csrf import _get_new_csrf_string
from django.urls import reverse

from profiles.models import Client, ProfileApiSettings
from tests.bad_input_catalogue import (
    CASES,
    CHUNKED_REFUSED,
    CHUNKED_UPDATE,
    DEFAULT_DATA_UPLOAD_MAX_MEMORY_SIZE,
    UPDATE,
    Case,
    chunked,
)
from tests.gunicorn_server import manage, send
from tests.live_server import LiveServer, live_server
from tests.support import basic_authorization, signed_in

TO_GUNICORN = {case.what: case for case in CASES if case.transport == "gunicorn"}
ALICE_PASSWORD = "chunked bodies, read whole"
PROFILE = "u-chunked"
SEED = f"""
from django.contrib.auth.models import User
from profiles.models import Client, Membership, Profile, Role
demo = Client.objects.get(code="demo")
alice = User.objects.create_user("alice", password={ALICE_PASSWORD!r})
Membership.objects.create(user=alice, client=demo, role=Role.APPROVER)
Profile.objects.create(client=demo, third_party_id={PROFILE!r}, attributes={{}})
"""


def server_settings() -> dict[str, str]:
    """The settings the cases name, as the server's environment."""
    named: dict[str, str] = {}
    for case in TO_GUNICORN.values():
        for name, value in case.settings.items():
            assert named.setdefault(name, str(value)) == str(value), f"cases differ on {name}"
    return named


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("chunked"), **server_settings()) as running:
        manage(running.env, "shell", "-c", SEED)
        yield running


def port_of(server: LiveServer) -> int:
    return urlsplit(server.url).port or 80


def send_case(server: LiveServer, case: Case) -> tuple[int, str]:
    placeholders = {
        "{token}": server.token,
        "{alice}": basic_authorization("alice", ALICE_PASSWORD),
    }
    headers = {"Content-Type": case.content_type} if case.content_type else {}
    for name, value in case.headers.items():
        for placeholder, filled in placeholders.items():
            value = value.replace(placeholder, filled)
        headers[name] = value
    return send(port_of(server), case.path, headers, [case.body], method=case.method)


def attributes(server: LiveServer) -> dict[str, str]:
    """The profile's attributes as the profile fetch answers them."""
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{server.url}/rest/v1/profiles/thirdPartyId/{PROFILE}?client=demo",
        headers={"Authorization": f"Bearer {server.token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        document: dict[str, Any] = json.load(response)
    return {name: item["value"] for name, item in document["profileAttributes"].items()}


def test_the_management_cases_are_sized_by_djangos_own_limit() -> None:
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == DEFAULT_DATA_UPLOAD_MAX_MEMORY_SIZE


def test_it_stores_the_chunked_body_of_a_single_update_over_the_query(server: LiveServer) -> None:
    # The probe's request: the value from the query was stored, the body's dropped.
    case = TO_GUNICORN[
        "chunked single update body naming what the query names (the body wins, as sent "
        "with a Content-Length)"
    ]
    assert case.path == CHUNKED_UPDATE

    status, body = send_case(server, case)

    assert status == 200, body
    assert attributes(server)["chk"] == "from-body"


def test_it_stores_a_chunked_single_update_json_body(server: LiveServer) -> None:
    status, body = send_case(server, TO_GUNICORN["chunked single update JSON body"])

    assert status == 200, body
    assert attributes(server)["json"] == "from-chunked-json"


def test_it_stores_a_chunked_multipart_single_update(server: LiveServer) -> None:
    form = (
        b'--b\r\nContent-Disposition: form-data; name="profile.multipart"\r\n\r\n'
        b"from-chunked-multipart\r\n--b--\r\n"
    )
    status, body = send(
        port_of(server),
        f"{UPDATE}?mbox3rdPartyId={PROFILE}",
        {
            "Content-Type": "multipart/form-data; boundary=b",
            "Transfer-Encoding": "chunked",
            "Authorization": f"Bearer {server.token}",
        },
        [chunked(form, 7)],
    )

    assert status == 200, body
    assert attributes(server)["multipart"] == "from-chunked-multipart"


def test_it_applies_a_chunked_json_bulk(server: LiveServer) -> None:
    status, body = send_case(server, TO_GUNICORN["chunked JSON bulk"])

    assert status == 200, body
    assert attributes(server)["bulk"] == "chunked"


def test_a_chunked_body_over_the_limit_changes_nothing(server: LiveServer) -> None:
    before = attributes(server)

    status, _ = send_case(server, TO_GUNICORN["chunked single update body over 60 KB"])

    assert status == 413
    assert attributes(server) == before


def test_a_page_refuses_a_chunked_form_rather_than_act_on_an_empty_one(
    alice: User, demo: Client
) -> None:
    browser = signed_in(alice)
    secret = _get_new_csrf_string()
    browser.cookies["csrftoken"] = secret
    form = b"require_authentication=enabled&save_authentication=1"

    response = browser.post(
        reverse("implementation", kwargs={"client_code": demo.code}),
        data=chunked(form),
        content_type="application/x-www-form-urlencoded",
        headers={"Transfer-Encoding": "chunked", "X-CSRFToken": secret},
        CONTENT_LENGTH="",  # a chunked body has none
    )

    assert response.status_code == 411
    assert CHUNKED_REFUSED in response.content.decode()
    assert not ProfileApiSettings.for_client(demo).require_authentication


# Last, as its token request replaces demo's token (the old one stays valid for an hour).
@pytest.mark.parametrize(
    "case", [pytest.param(case, id=case.what) for case in TO_GUNICORN.values()]
)
def test_it_answers_each_chunked_request_as_the_catalogue_says(
    server: LiveServer, case: Case
) -> None:
    status, body = send_case(server, case)
    assert status == case.status, body[:500]
    assert case.message in body, body[:500]
