"""The profile APIs' lean path (docs/operations.md#the-api-path).

API paths (``/m2/``, ``/rest/v1/profiles/``, ``/api/v1/``) skip the pages' machinery
(sessions, CSRF, sign-in and its lockout, messages, static files, HTML error pages), yet
every answer still carries the security headers, the host is still checked against
ALLOWED_HOSTS, and each request is still one log line, refusals included.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client as HttpClient
from django.test import RequestFactory

from profiles.api import fetch
from profiles.api.paths import ApiPathsMiddleware
from profiles.models import Client, Role
from tests.conftest import member
from tests.fixtures import RootRecords
from tests.profile_api import a_profile, issue_token, message_of, require_authentication
from tests.support import basic

# Through Django's test client and through the fast lane in front of it.
pytestmark = pytest.mark.usefixtures("both_doors")

FETCH = "/rest/v1/profiles/thirdPartyId/u-1?client=demo"
UPDATE = "/m2/demo/profile/update?mbox3rdPartyId=u-1&profile.tier=gold"
PAGE_MIDDLEWARE_ONLY = ("sessionid", "csrftoken", "messages")


def test_only_the_profile_apis_skip_the_page_middleware() -> None:
    passed_on: list[str] = []

    def pages(request: HttpRequest) -> HttpResponse:
        passed_on.append(request.path)
        return HttpResponse()

    middleware = ApiPathsMiddleware(pages)
    factory = RequestFactory()
    for path in ("/m2/demo/profile/update", "/rest/v1/profiles/p1", "/api/v1/clients/x/batches/y"):
        middleware(factory.get(path))
    pages = ["/", "/clients/demo/profiles/", "/admin/", "/demo/target/clients/settings"]
    # A client coded m2 has its management API under the /m2/ prefix.
    pages.append("/m2/target/clients/settings")
    for path in pages:
        middleware(factory.get(path))

    assert passed_on == pages


def test_an_api_answer_carries_every_security_header_and_its_length(demo: Client) -> None:
    a_profile(demo)

    response = HttpClient().get(FETCH)

    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Content-Security-Policy"].startswith("default-src 'self';")
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert int(response["Content-Length"]) == len(response.content)
    assert len(response["X-Request-ID"]) == 32


def test_an_api_answer_sets_no_page_cookie_even_to_a_signed_in_browser(
    demo: Client, client: HttpClient
) -> None:
    a_profile(demo)
    client.cookies["sessionid"] = "whatever"

    response = client.get(UPDATE)

    assert response.status_code == 200
    assert not set(response.cookies) & set(PAGE_MIDDLEWARE_ONLY)
    assert "Vary" not in response


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/m2/demo/profile/nothing", "application/xml"),
        ("/rest/v1/profiles/thirdPartyId/a/b?client=demo", "application/json"),
        ("/api/v1/clients/demo/nothing", "application/json"),
    ],
)
def test_an_api_path_that_names_no_endpoint_is_a_404_in_its_apis_envelope(
    db: None, path: str, content_type: str
) -> None:
    response = HttpClient().get(path)

    assert response.status_code == 404
    assert response["Content-Type"].startswith(content_type)
    assert b"<html" not in response.content.lower()
    if content_type == "application/json" and path.startswith("/api/"):
        assert json.loads(response.content)["error"]["code"] == "not_found"
    else:
        assert message_of(response) == "Not found."
    assert response["X-Frame-Options"] == "DENY"


def test_an_api_call_naming_a_host_that_is_not_allowed_is_refused(demo: Client) -> None:
    a_profile(demo)

    response = HttpClient().get(FETCH, HTTP_HOST="evil.example")

    assert response.status_code == 400


def test_a_refused_api_call_is_one_request_line_and_the_gates_reason(
    demo: Client, root_records: RootRecords
) -> None:
    require_authentication(demo)

    response = HttpClient().get(FETCH)

    assert response.status_code == 401
    assert [record.getMessage() for record in root_records.of("targetadmin.request")] == [
        "GET /rest/v1/profiles/thirdPartyId/u-1 401"
    ]
    assert len(root_records.of("profiles.api.gate")) == 1
    assert root_records.of("django.request") == []


def test_a_server_error_on_an_api_path_is_still_logged_with_its_traceback(
    demo: Client, root_records: RootRecords, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(fetch, "find", broken)

    response = HttpClient(raise_request_exception=False).get(FETCH)

    assert response.status_code == 500
    (error,) = root_records.of("django.request")
    assert error.exc_info is not None
    assert "boom" in str(error.exc_info[1])


def test_an_accepted_api_call_spends_one_query_a_lookup(
    demo: Client, django_assert_num_queries: Any
) -> None:
    a_profile(demo)
    require_authentication(demo)
    token = issue_token(demo)
    http = HttpClient()
    # The token's first use in a minute also records it (docs/tokens.md); later ones do not.
    http.get(FETCH, HTTP_AUTHORIZATION=f"Bearer {token}")

    # The token (with its client) and the profile: nothing for sessions or sign-in.
    with django_assert_num_queries(2):
        response = http.get(FETCH, HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 200


def test_a_client_named_like_an_api_prefix_keeps_its_management_api(db: None) -> None:
    """``/m2/target/...`` is the management API of a client coded ``m2``, not a profile API."""
    m2 = Client.objects.create(code="m2", name="M2")
    member(m2, "mo", Role.APPROVER)

    response = HttpClient().get("/m2/target/clients/settings", headers=basic("mo"))

    assert response.status_code == 200
    assert response.json()["enableProfileApiAuthentication"] is False
