"""A new token's plaintext exists once, in the response to Generate, and nowhere else
(docs/tokens.md#at-rest): not in any table, log line, query, session, message, later page or the
admin. A retrievable token is also shown by Reveal and GET …/authentication/token, and kept
encrypted only (docs/tokens.md#retrievable-tokens)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext

from profiles.access.actors import SYSTEM
from profiles.models import Client, ProfileApiSettings, ProfileToken
from tests.support import basic as basic_headers

TOKEN_PATTERN = re.compile(r"tpa_[0-9A-Za-z]{49}")
PAGE = "/setup/demo/implementation/"


def stored_values() -> Iterator[tuple[str, str]]:
    """Every value in every table of the database, as text (bytes byte for byte), with the
    table's name."""
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        yield table, bytes(value).decode("latin-1")
                    else:
                        yield table, str(value)


@pytest.fixture
def generated(
    alice: User, demo: Client, caplog: pytest.LogCaptureFixture
) -> tuple[HttpClient, str, CaptureQueriesContext]:
    """alice generates a token on the screen; returns her browser, the plaintext, the queries."""
    caplog.set_level(logging.DEBUG)
    ProfileApiSettings.for_client(demo).set_require_authentication(True, actor=SYSTEM)
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
    for table, text in stored_values():
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


# Retrievable tokens (docs/tokens.md#retrievable-tokens): the kept copy is encrypted, and
# showing it again (Reveal, GET …/authentication/token) leaks it nowhere else either.


@pytest.fixture
def retrieved(
    alice: User, demo: Client, caplog: pytest.LogCaptureFixture
) -> tuple[HttpClient, str, CaptureQueriesContext]:
    """alice allows retrieval, generates, reveals on the screen and fetches the token through
    the management API; returns her browser, the plaintext, the queries of the retrievals."""
    caplog.set_level(logging.DEBUG)
    http = HttpClient()
    http.force_login(alice)
    http.post(PAGE, {"require_authentication": "enabled", "save_authentication": "1"})
    http.post(PAGE, {"token_retrievable": "on", "save_retrievable": "1"})
    generated = http.post(PAGE, {"expires_in_days": "90", "generate": "1"})
    (plaintext,) = TOKEN_PATTERN.findall(generated.content.decode())
    with CaptureQueriesContext(connection) as queries:
        revealed = http.post(PAGE, {"reveal": "1"})
        fetched = HttpClient().get(
            "/demo/target/authentication/token", headers=basic_headers("alice")
        )
    assert TOKEN_PATTERN.findall(revealed.content.decode()) == [plaintext]
    assert "no-store" in revealed["Cache-Control"]
    assert all(plaintext not in morsel.value for morsel in revealed.cookies.values())
    assert fetched.json()["accessToken"] == plaintext
    return http, plaintext, queries


def test_a_kept_copy_is_encrypted_in_every_table(
    retrieved: tuple[HttpClient, str, CaptureQueriesContext],
) -> None:
    _, plaintext, _ = retrieved
    secret_part = plaintext.removeprefix("tpa_")
    for table, text in stored_values():
        assert secret_part not in text, table
    assert ProfileToken.objects.get().ciphertext


def test_retrievals_keep_the_plaintext_out_of_sessions_queries_and_logs(
    retrieved: tuple[HttpClient, str, CaptureQueriesContext], caplog: pytest.LogCaptureFixture
) -> None:
    http, plaintext, queries = retrieved
    assert len(queries) > 0
    assert all(plaintext[4:] not in query["sql"] for query in queries.captured_queries)

    http.post(PAGE, {"save_retrievable": "1"})  # turning it off, audited and logged

    sessions = [str(session.get_decoded()) for session in Session.objects.all()]
    assert sessions
    assert all(plaintext not in decoded for decoded in sessions)
    assert caplog.records
    assert plaintext[4:] not in caplog.text
    assert ProfileToken.objects.get().ciphertext is None


def test_the_admin_shows_neither_the_plaintext_nor_the_kept_copy(
    retrieved: tuple[HttpClient, str, CaptureQueriesContext], demo: Client, root: User
) -> None:
    _, plaintext, _ = retrieved
    token = ProfileToken.objects.get()
    assert token.ciphertext is not None
    admin = HttpClient()
    admin.force_login(root)

    for url in (
        "/admin/profiles/profiletoken/",
        f"/admin/profiles/profiletoken/{token.pk}/change/",
        "/admin/profiles/auditevent/",
        f"/admin/profiles/client/{demo.pk}/change/",
    ):
        html = admin.get(url).content.decode()
        assert plaintext[4:] not in html, url
        assert token.ciphertext not in html, url
        assert token.ciphertext[:40] not in html, url
