"""A new token's plaintext exists once, in the response to Generate, and nowhere else
(docs/tokens.md#at-rest): not in any table, log line, query, session, message, later page or the
admin."""

from __future__ import annotations

import logging
import re

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext

from profiles.models import Client, ProfileApiSettings, ProfileToken

TOKEN_PATTERN = re.compile(r"tpa_[0-9A-Za-z]{49}")
PAGE = "/setup/demo/implementation/"


@pytest.fixture
def generated(
    alice: User, demo: Client, caplog: pytest.LogCaptureFixture
) -> tuple[HttpClient, str, CaptureQueriesContext]:
    """alice generates a token on the screen; returns her browser, the plaintext, the queries."""
    caplog.set_level(logging.DEBUG)
    ProfileApiSettings.for_client(demo).set_require_authentication(True, actor=None)
    http = HttpClient()
    http.force_login(alice)
    with CaptureQueriesContext(connection) as queries:
        response = http.post(PAGE, {"expires_in_days": "90", "generate": "1"})
    (plaintext,) = TOKEN_PATTERN.findall(response.content.decode())
    assert response.status_code == 200
    assert not response.has_header("Location")
    assert "no-store" in response["Cache-Control"]
    assert all(plaintext not in morsel.value for morsel in response.cookies.values())
    return http, plaintext, queries


def test_it_stores_the_plaintext_in_no_column_of_any_table(
    generated: tuple[HttpClient, str, CaptureQueriesContext],
) -> None:
    _, plaintext, _ = generated
    secret_part = plaintext.removeprefix("tpa_")
    scanned = 0
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                for value in row:
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    assert secret_part not in text, f"token found in {table}"
                    scanned += 1
    assert scanned > 0
    token = ProfileToken.objects.get()
    assert token.last_four == plaintext[-4:]


def test_it_keeps_the_plaintext_out_of_sessions(
    generated: tuple[HttpClient, str, CaptureQueriesContext],
) -> None:
    _, plaintext, _ = generated
    sessions = [str(session.get_decoded()) for session in Session.objects.all()]

    assert sessions
    assert all(plaintext not in decoded for decoded in sessions)


def test_it_sends_the_plaintext_in_no_query(
    generated: tuple[HttpClient, str, CaptureQueriesContext],
) -> None:
    _, plaintext, queries = generated

    assert len(queries) > 0
    assert all(plaintext[4:] not in query["sql"] for query in queries.captured_queries)


def test_it_logs_nothing_of_the_plaintext(
    generated: tuple[HttpClient, str, CaptureQueriesContext], caplog: pytest.LogCaptureFixture
) -> None:
    http, plaintext, _ = generated
    http.get(PAGE)
    http.get("/setup/acme/implementation/")  # a logged 404

    assert caplog.records
    assert plaintext[4:] not in caplog.text


def test_it_never_shows_the_plaintext_again(
    generated: tuple[HttpClient, str, CaptureQueriesContext],
) -> None:
    http, plaintext, _ = generated

    response = http.get(PAGE)

    html = response.content.decode()
    assert plaintext not in html
    assert TOKEN_PATTERN.search(html) is None
    assert [str(message) for message in response.context["messages"]] == []
    assert f"tpa_…{plaintext[-4:]}" in html


def test_it_never_shows_the_plaintext_or_digest_in_the_admin(
    generated: tuple[HttpClient, str, CaptureQueriesContext], demo: Client, root: User
) -> None:
    _, plaintext, _ = generated
    token = ProfileToken.objects.get()
    admin = HttpClient()
    admin.force_login(root)
    pages = [
        "/admin/profiles/profiletoken/",
        f"/admin/profiles/profiletoken/{token.pk}/change/",
        "/admin/profiles/auditevent/",
        f"/admin/profiles/client/{demo.pk}/change/",
    ]

    for url in pages:
        response = admin.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert plaintext[4:] not in html, url
        assert token.digest not in html, url
