"""Every request of the bad-input catalogue gets the status and message it lists.

The cases live in ``tests/bad_input_catalogue.py``; ``docs/bad-input.md`` is generated from
them and must match. The truncated-upload and chunked cases go through a real socket to a
live server, since a test client can send neither fewer bytes than it declares nor a chunked
body; the cases sent chunked to gunicorn are ``tests/test_chunked_bodies.py``'s, and those
whose header names only gunicorn sees as sent are ``tests/test_caller_address.py``'s.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.core.servers.basehttp import WSGIRequestHandler
from django.test import Client as HttpClient
from django.utils import timezone

from profiles.access.actors import SYSTEM
from profiles.ingest.batches import ApiVersion, Batch
from profiles.models import Client, Profile, ProfileApiSettings, ProfileToken
from profiles.tokens import secret
from tests import bad_input_catalogue
from tests.bad_input_catalogue import ACME_BATCH_ID, CASES, Case
from tests.batches import stored_files, xml_body
from tests.profile_api import require_authentication
from tests.support import PASSWORD, basic_authorization

DOC = Path(__file__).resolve().parent.parent / "docs" / "bad-input.md"
IN_PROCESS = [pytest.param(case, id=case.what) for case in CASES if case.transport == "test client"]
OVER_SOCKET = {case.what: case for case in CASES if case.transport == "socket"}


@pytest.fixture
def world(demo: Client, other_client: Client, alice: User, root: User) -> dict[str, str]:
    """demo and acme with a profile each, acme's batch, and the tokens the cases name."""
    Profile.objects.create(client=demo, pc_id="p1", third_party_id="u1", attributes={})
    Profile.objects.create(client=other_client, pc_id="acme-p1", attributes={})
    Batch.objects.create(
        id=ACME_BATCH_ID,
        client=other_client,
        api_version=ApiVersion.JSON,
        create_missing=False,
        batch_size=0,
    )
    _, acme_token = ProfileToken.objects.issue(other_client, expires_in_days=90, actor=SYSTEM)
    _, expired = ProfileToken.objects.issue(
        demo, expires_in_days=1, actor=SYSTEM, now=timezone.now() - timedelta(days=2)
    )
    _, revoked = ProfileToken.objects.issue(demo, expires_in_days=90, actor=SYSTEM)
    _, token = ProfileToken.objects.issue(demo, expires_in_days=90, actor=SYSTEM)
    return {
        "token": token,
        "revoked_token": revoked,
        "expired_token": expired,
        "acme_token": acme_token,
        "unknown_token": secret.generate(),
        "acme_batch": ACME_BATCH_ID,
        "alice": basic_authorization("alice", PASSWORD),
        "alice_wrong": basic_authorization("alice", "wrong"),
    }


def filled(text: str, world: dict[str, str]) -> str:
    for name, value in world.items():
        text = text.replace(f"{{{name}}}", value)
    return text


def prepare(case: Case, world: dict[str, str], demo: Client, settings: Any) -> None:
    for name, value in case.settings.items():
        setattr(settings, name, value)
    if case.authentication:
        require_authentication(demo)
    if case.retrievable:
        ProfileApiSettings.for_client(demo).set_token_retrievable(True, actor=SYSTEM)
        ProfileToken.objects.issue(demo, expires_in_days=90, actor=SYSTEM)
    if "{expired_token}" in str(case.headers):
        # The expired token must be demo's newest, unrevoked one to be reported as expired.
        ProfileToken.objects.filter(client=demo).exclude(
            digest=secret.digest(world["expired_token"])
        ).delete()
        ProfileToken.objects.filter(client=demo).update(revoked_at=None)


@pytest.mark.parametrize("case", IN_PROCESS)
def test_it_answers_each_bad_request_with_its_status_and_message(
    case: Case, world: dict[str, str], demo: Client, client: HttpClient, settings: Any
) -> None:
    prepare(case, world, demo, settings)
    if case.signed_in:
        client.force_login(User.objects.get(username=case.signed_in))
    headers = {name: filled(value, world) for name, value in case.headers.items()}
    extra: dict[str, Any] = {"content_type": case.content_type} if case.content_type else {}
    response = client.generic(
        case.method, filled(case.path, world), data=case.body, headers=headers, **extra
    )
    body = xml_body(response).decode(errors="replace")
    assert response.status_code == case.status, body[:500]
    assert case.message in body, body[:500]
    if case.status == 401:
        assert response.has_header("WWW-Authenticate")
    if case.status in (405,):
        assert response.has_header("Allow")
    if case.status == 429:
        assert response.has_header("Retry-After")


def test_the_committed_catalogue_is_the_generated_one() -> None:
    assert DOC.read_text() == bad_input_catalogue.markdown(), (
        "docs/bad-input.md is stale: run make bad-input-catalogue"
    )


def test_the_catalogue_has_at_least_forty_requests_of_every_kind() -> None:
    assert len(CASES) >= 40
    kinds = {case.category for case in CASES}
    assert kinds >= {
        "method",
        "content type",
        "size",
        "id",
        "attribute",
        "traversal",
        "injection",
        "client",
        "cross-client",
        "token",
    }


# Over a real socket -------------------------------------------------------------------------


def send_raw(url: str, case: Case, *, pause: float = 0.0, timeout: float = 10.0) -> bytes:
    """Send ``case`` byte by byte as written, end the upload, and read the whole answer."""
    parts = urlsplit(url)
    head = [f"{case.method} {case.path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    head += [f"Content-Type: {case.content_type}"]
    head += [f"{name}: {value}" for name, value in case.headers.items()]
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as connection:
        connection.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + case.body)
        if pause:
            time.sleep(pause)  # the client goes quiet with most of the body still owed
        else:
            connection.shutdown(socket.SHUT_WR)  # the client gives up mid-upload
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def status_and_body(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body.decode(errors="replace")


def test_a_truncated_upload_is_refused_and_stores_nothing(
    live_server: Any, transactional_db: None, settings: Any, tmp_path: Path
) -> None:
    Client.objects.create(code="demo", name="Demo")
    case = OVER_SOCKET["Content-Length larger than the body, then the connection ends"]
    status, body = status_and_body(send_raw(live_server.url, case))
    assert status == case.status, body
    assert case.message in body
    assert not Batch.objects.exists()
    assert stored_files() == []


def test_a_single_update_cut_off_before_its_content_length_changes_nothing(
    live_server: Any, transactional_db: None, world: dict[str, str]
) -> None:
    case = OVER_SOCKET[
        "single update body shorter than its Content-Length, then the connection ends"
    ]
    status, body = status_and_body(send_raw(live_server.url, case))
    assert status == case.status, body
    assert case.message in body
    assert Profile.objects.get(pc_id="p1").attributes == {}


def test_a_slow_upload_is_cut_off_by_the_read_timeout_and_stores_nothing(
    live_server: Any, transactional_db: None, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    Client.objects.create(code="demo", name="Demo")
    monkeypatch.setattr(WSGIRequestHandler, "timeout", 0.5)  # the server's socket timeout
    case = OVER_SOCKET["a slow upload cut off by the server's read timeout"]
    status, body = status_and_body(send_raw(live_server.url, case, pause=1.5))
    assert status == case.status, body
    assert case.message in body
    assert not Batch.objects.exists()


def test_a_multipart_upload_cut_off_mid_file_is_refused_and_changes_nothing(
    live_server: Any, transactional_db: None, settings: Any
) -> None:
    demo = Client.objects.create(code="demo", name="Demo")
    Profile.objects.create(client=demo, pc_id="cut-1", attributes={})
    case = OVER_SOCKET[
        "multipart upload cut off mid-file (Content-Length of the whole), then the connection ends"
    ]
    status, body = status_and_body(send_raw(live_server.url, case))
    assert status == case.status, body
    assert case.message in body
    assert not Batch.objects.exists()
    assert stored_files() == []
    assert list(Profile.objects.values_list("pc_id", "attributes")) == [("cut-1", {})]


def test_a_chunked_upload_to_a_server_that_does_not_dechunk_is_refused_by_name(
    live_server: Any, transactional_db: None, settings: Any
) -> None:
    Client.objects.create(code="demo", name="Demo")
    case = OVER_SOCKET[
        "Transfer-Encoding: chunked to a server that does not de-chunk (gunicorn does)"
    ]
    status, body = status_and_body(send_raw(live_server.url, case))
    assert status == case.status, body
    assert case.message in body
    assert not Batch.objects.exists()


@pytest.mark.parametrize(
    "case",
    [pytest.param(case, id=case.what) for case in OVER_SOCKET.values() if case.status == 411],
)
def test_every_chunked_body_to_a_server_that_does_not_dechunk_is_refused_with_411(
    case: Case, live_server: Any, transactional_db: None, world: dict[str, str]
) -> None:
    headers = {name: filled(value, world) for name, value in case.headers.items()}
    sent = dataclasses.replace(case, headers=headers)
    status, body = status_and_body(send_raw(live_server.url, sent))
    assert status == case.status, body
    assert case.message in body
