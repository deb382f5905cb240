"""docs/api.md#authentication: who may call the profile APIs, for every profile API endpoint."""

from __future__ import annotations

import logging

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext, override_settings

from profiles.access.throttle import PROFILE_API_FAILURES
from profiles.models import Client
from profiles.tokens import secret
from tests.profile_api import (
    PC_ID,
    Endpoint,
    a_profile,
    issue_token,
    message_of,
    require_authentication,
    xml_fields,
)
from tests.support import bearer

# Through Django's test client and through the fast lane in front of it.
pytestmark = pytest.mark.usefixtures("both_doors")

BEARER = 'Bearer error="invalid_token"'
ADOBE_IO_LOGIN = (
    "eyJhbGciOiJSUzI1NiIsIng1dSI6Imltc19uYTEta2V5LWF0LTEuY2VyIn0.eyJpZCI6IjE2NjYifQ.sig"
)


def assert_refused(response: HttpResponse, challenge: str, says: str) -> None:
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == challenge
    assert says in message_of(response)


def well_formed_unknown() -> str:
    """A token with a valid checksum that was never issued."""
    return secret.generate()


# Authentication off


def test_it_accepts_calls_without_a_token_when_authentication_is_off(
    http: HttpClient, endpoint: Endpoint
) -> None:
    assert endpoint.call(http).status_code == 200


def test_it_ignores_a_sent_token_when_authentication_is_off(
    http: HttpClient, demo: Client, other_client: Client, endpoint: Endpoint
) -> None:
    assert endpoint.call(http, **bearer("not-a-token")).status_code == 200
    assert endpoint.call(http, **bearer(issue_token(other_client))).status_code == 200
    expired = issue_token(demo, days_ago=8, expires_in_days=7)
    assert endpoint.call(http, HTTP_ACCESS_TOKEN=expired).status_code == 200


def test_it_takes_effect_on_the_next_call_when_authentication_is_turned_off(
    http: HttpClient, demo: Client, endpoint: Endpoint
) -> None:
    require_authentication(demo)
    assert endpoint.call(http).status_code == 401
    require_authentication(demo, enabled=False)
    assert endpoint.call(http).status_code == 200


# Authentication on: accepted


def test_it_accepts_the_active_token_as_a_bearer(
    http: HttpClient, demo: Client, endpoint: Endpoint
) -> None:
    require_authentication(demo)
    token = issue_token(demo)
    assert endpoint.call(http, **bearer(token)).status_code == 200
    assert endpoint.call(http, HTTP_AUTHORIZATION=f"bearer  {token}").status_code == 200


def test_it_accepts_the_active_token_in_the_legacy_access_token_header(
    http: HttpClient, demo: Client, endpoint: Endpoint
) -> None:
    require_authentication(demo)
    assert endpoint.call(http, HTTP_ACCESS_TOKEN=issue_token(demo)).status_code == 200


def test_it_accepts_an_unrelated_bearer_when_access_token_carries_the_active_token(
    http: HttpClient, demo: Client, endpoint: Endpoint
) -> None:
    require_authentication(demo)
    token = issue_token(demo)
    response = endpoint.call(http, HTTP_ACCESS_TOKEN=token, **bearer(ADOBE_IO_LOGIN))
    assert response.status_code == 200
    response = endpoint.call(http, HTTP_ACCESS_TOKEN="stale", **bearer(token))
    assert response.status_code == 200


# Authentication on: refused


def test_it_asks_for_a_token_when_none_is_sent(
    http: HttpClient, demo: Client, endpoint: Endpoint
) -> None:
    require_authentication(demo)
    issue_token(demo)
    assert_refused(endpoint.call(http), "Bearer", "required")


def test_it_asks_for_a_token_when_the_bearer_scheme_carries_none(
    http: HttpClient, demo: Client, endpoint: Endpoint
) -> None:
    require_authentication(demo)
    issue_token(demo)
    assert_refused(endpoint.call(http, HTTP_AUTHORIZATION="Bearer"), "Bearer", "required")
    assert_refused(endpoint.call(http, HTTP_AUTHORIZATION="Bearer   "), "Bearer", "required")
    assert_refused(
        endpoint.call(http, HTTP_AUTHORIZATION="Basic YWxpY2U6eA=="), "Bearer", "required"
    )


def test_it_never_accepts_a_token_in_the_query_string(
    http: HttpClient, demo: Client, endpoint: Endpoint
) -> None:
    require_authentication(demo)
    token = issue_token(demo)
    for name in ("access_token", "token"):
        response = endpoint.call(http, query=f"{name}={token}")
        assert_refused(response, "Bearer", "required")
        assert "query string" in message_of(response)


def test_it_refuses_a_malformed_token_as_invalid(
    http: HttpClient, demo: Client, endpoint: Endpoint
) -> None:
    require_authentication(demo)
    token = issue_token(demo)
    for bad in ("not-a-token", token[:-1], token[:-1] + ("a" if token[-1] != "a" else "b")):
        assert_refused(endpoint.call(http, **bearer(bad)), BEARER, "invalid")


def test_it_refuses_an_unknown_token_as_invalid(
    http: HttpClient, demo: Client, endpoint: Endpoint
) -> None:
    require_authentication(demo)
    issue_token(demo)
    assert_refused(endpoint.call(http, **bearer(well_formed_unknown())), BEARER, "invalid")


def test_it_refuses_another_clients_valid_token_as_invalid(
    http: HttpClient, demo: Client, other_client: Client, endpoint: Endpoint
) -> None:
    require_authentication(demo)
    require_authentication(other_client)
    issue_token(demo)
    acme_token = issue_token(other_client)
    assert_refused(endpoint.call(http, **bearer(acme_token)), BEARER, "invalid")
    assert_refused(endpoint.call(http, HTTP_ACCESS_TOKEN=acme_token), BEARER, "invalid")


def test_it_refuses_an_expired_token_saying_it_expired(
    http: HttpClient, demo: Client, endpoint: Endpoint
) -> None:
    require_authentication(demo)
    expired = issue_token(demo, days_ago=8, expires_in_days=7)
    assert_refused(endpoint.call(http, **bearer(expired)), BEARER, "expired")
    assert_refused(endpoint.call(http, HTTP_ACCESS_TOKEN=expired), BEARER, "expired")


def test_it_refuses_the_old_token_on_the_very_next_call_after_a_re_generation(
    http: HttpClient, demo: Client, endpoint: Endpoint
) -> None:
    require_authentication(demo)
    old = issue_token(demo)
    assert endpoint.call(http, **bearer(old)).status_code == 200
    new = issue_token(demo)
    assert_refused(endpoint.call(http, **bearer(old)), BEARER, "invalid")
    assert endpoint.call(http, **bearer(new)).status_code == 200


def test_it_refuses_two_tokens_when_neither_is_the_active_one(
    http: HttpClient, demo: Client, other_client: Client, endpoint: Endpoint
) -> None:
    require_authentication(demo)
    token = issue_token(demo)
    acme_token = issue_token(other_client)
    both_wrong = endpoint.call(http, HTTP_ACCESS_TOKEN=acme_token, **bearer(ADOBE_IO_LOGIN))
    assert_refused(both_wrong, BEARER, "invalid")
    in_one_header = endpoint.call(http, HTTP_AUTHORIZATION=f"Bearer {token} {token}")
    assert_refused(in_one_header, BEARER, "invalid")
    repeated_header = endpoint.call(http, **bearer(f"{token},{token}"))
    assert_refused(repeated_header, BEARER, "invalid")


def test_it_says_expired_when_one_of_two_refused_tokens_is_the_expired_one(
    http: HttpClient, demo: Client, endpoint: Endpoint
) -> None:
    require_authentication(demo)
    expired = issue_token(demo, days_ago=8, expires_in_days=7)
    response = endpoint.call(http, HTTP_ACCESS_TOKEN=expired, **bearer(ADOBE_IO_LOGIN))
    assert_refused(response, BEARER, "expired")


def test_it_refuses_a_non_ascii_token_as_invalid(
    http: HttpClient, demo: Client, endpoint: Endpoint
) -> None:
    require_authentication(demo)
    token = issue_token(demo)
    non_ascii = token[:-1] + "é"
    assert_refused(endpoint.call(http, **bearer(non_ascii)), BEARER, "invalid")
    assert_refused(endpoint.call(http, HTTP_ACCESS_TOKEN="tpa_ñandú"), BEARER, "invalid")


def test_it_refuses_everything_when_authentication_is_on_and_no_token_exists(
    http: HttpClient, demo: Client, endpoint: Endpoint
) -> None:
    require_authentication(demo)
    assert_refused(endpoint.call(http), "Bearer", "required")
    assert_refused(endpoint.call(http, **bearer(well_formed_unknown())), BEARER, "invalid")


# Throttling


@override_settings(PROFILE_API_AUTH_FAILURE_LIMIT=3, PROFILE_API_AUTH_FAILURE_WINDOW_SECONDS=60)
def test_it_throttles_repeated_failures_from_one_address(
    http: HttpClient, demo: Client, endpoint: Endpoint
) -> None:
    require_authentication(demo)
    token = issue_token(demo)
    for _ in range(3):
        assert endpoint.call(http, **bearer("wrong")).status_code == 401
    throttled = endpoint.call(http, **bearer("wrong"))
    assert throttled.status_code == 429
    assert 1 <= int(throttled["Retry-After"]) <= 60
    assert "Too many" in message_of(throttled)
    assert endpoint.call(http).status_code == 429
    # The valid token still works from that address; another address is not throttled.
    assert endpoint.call(http, **bearer(token)).status_code == 200
    elsewhere = endpoint.call(http, REMOTE_ADDR="192.0.2.7", **bearer("wrong"))
    assert elsewhere.status_code == 401


@override_settings(PROFILE_API_AUTH_FAILURE_LIMIT=2, PROFILE_API_AUTH_FAILURE_WINDOW_SECONDS=60)
def test_it_counts_failures_per_window_and_says_how_long_to_wait(db: None) -> None:
    start = 6_000_000.0  # the start of a 60-second window
    assert PROFILE_API_FAILURES.count("192.0.2.1", now=start) is None
    assert PROFILE_API_FAILURES.count("192.0.2.1", now=start + 1) is None
    assert PROFILE_API_FAILURES.count("192.0.2.1", now=start + 15) == 45
    assert PROFILE_API_FAILURES.count("192.0.2.1", now=start + 59.5) == 1
    assert PROFILE_API_FAILURES.count("192.0.2.2", now=start + 59.5) is None
    assert PROFILE_API_FAILURES.count("192.0.2.1", now=start + 60) is None


# Unknown clients: refused as clients that require authentication


# Every profile API route, named by a client code, with what each needs to reach the view.
ALL_ROUTES = [
    ("POST", "/m2/{code}/profile/update?mboxPC=p1&profile.a=1"),
    ("GET", "/rest/v1/profiles/p1?client={code}"),
    ("GET", "/rest/v1/profiles/thirdPartyId/u1?client={code}"),
    ("POST", "/m2/{code}/profile/batchUpdate"),
    ("POST", "/m2/{code}/v2/profile/batchUpdate"),
    ("GET", "/m2/{code}/profile/batchStatus?batchId=x"),
    ("GET", "/m2/{code}/v2/profile/batchStatus?batchId=x"),
    ("POST", "/api/v1/clients/{code}/profiles/bulk"),
    ("GET", "/api/v1/clients/{code}/batches/x"),
]
# Names no client has: unknown, upper case, and codes no client can have.
UNKNOWN_CODES = ["nobody", "DEMO", "d%C3%A9mo", "a.b", "x" * 65, "de%00mo"]


def presented_credentials(demo: Client, other_client: Client) -> list[dict[str, str]]:
    """Every kind of credentials a caller without acme's token might present."""
    revoked = issue_token(other_client)
    issue_token(other_client)
    return [
        {},
        {"HTTP_AUTHORIZATION": "Basic YWxpY2U6eA=="},
        bearer("not-a-token"),
        bearer(well_formed_unknown()),
        bearer(revoked),
        bearer(issue_token(demo)),
        {"HTTP_ACCESS_TOKEN": issue_token(demo, days_ago=8, expires_in_days=7)},
    ]


def answer(http: HttpClient, method: str, url: str, **headers: str) -> tuple[object, ...]:
    """What a caller can observe of a refusal, but for the request id every answer differs by."""
    if method == "POST":
        response = http.post(url, data=b"", content_type="application/json", **headers)
    else:
        response = http.get(url, **headers)
    return (
        response.status_code,
        response.content,
        response.get("Content-Type"),
        response.get("WWW-Authenticate"),
        response.get("Retry-After"),
        sorted(name for name in response.headers if name != "X-Request-ID"),
    )


@override_settings(PROFILE_API_AUTH_FAILURE_LIMIT=1000)
def test_it_answers_an_unknown_client_exactly_as_a_client_that_requires_authentication(
    demo: Client, other_client: Client
) -> None:
    require_authentication(demo)
    require_authentication(other_client)
    http = HttpClient()
    for headers in presented_credentials(demo, other_client):
        for method, route in ALL_ROUTES:
            known = answer(http, method, route.format(code="acme"), **headers)
            assert known[0] == 401, (route, headers)
            for code in UNKNOWN_CODES:
                url = route.format(code=code)
                assert answer(http, method, url, **headers) == known, (url, headers)
    for query in ("access_token=x", "token=tpa_x"):
        url = f"/rest/v1/profiles/p1?{query}&client="
        assert answer(http, "GET", url + "nobody") == answer(http, "GET", url + "acme")


@override_settings(PROFILE_API_AUTH_FAILURE_LIMIT=1000)
def test_it_answers_an_unknown_host_on_the_placeholder_path_as_a_client_requiring_a_token(
    demo: Client,
) -> None:
    require_authentication(demo)
    http = HttpClient()
    url = "/m2/client/profile/update?mboxPC=p1&profile.a=1"
    known = answer(http, "GET", url, HTTP_HOST="demo.localhost:8000")
    assert known[0] == 401
    for host in ("acme.localhost:8000", "localhost", "nobody.localhost"):
        assert answer(http, "GET", url, HTTP_HOST=host) == known


def test_it_still_refuses_a_valid_token_of_one_client_for_another_unknown_or_not(
    http: HttpClient, demo: Client, other_client: Client, endpoint: Endpoint
) -> None:
    require_authentication(demo)
    acme_token = issue_token(other_client)
    unknown = Endpoint(
        endpoint.name,
        endpoint.method,
        endpoint.path.replace("/demo/", "/nobody/"),
        endpoint.query.replace("client=demo", "client=nobody"),
    )
    assert_refused(endpoint.call(http, **bearer(acme_token)), BEARER, "invalid")
    assert_refused(unknown.call(http, **bearer(acme_token)), BEARER, "invalid")


@override_settings(PROFILE_API_AUTH_FAILURE_LIMIT=3, PROFILE_API_AUTH_FAILURE_WINDOW_SECONDS=60)
def test_it_counts_probes_of_unknown_clients_toward_the_throttle(
    http: HttpClient, demo: Client
) -> None:
    for code in ("nobody", "beta", "DEMO"):
        assert http.get(f"/rest/v1/profiles/p1?client={code}").status_code == 401
    throttled = http.get("/rest/v1/profiles/p1?client=gamma")
    assert throttled.status_code == 429
    assert 1 <= int(throttled["Retry-After"]) <= 60
    # A client with authentication off is still open from that address.
    assert http.get(f"/rest/v1/profiles/{PC_ID}?client=demo").status_code == 200


def test_it_spends_the_same_queries_on_an_unknown_client_as_on_a_known_one(
    http: HttpClient, demo: Client, other_client: Client
) -> None:
    require_authentication(demo)
    issue_token(demo)
    token = bearer(well_formed_unknown())

    def queries_of(code: str) -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            assert http.get(f"/rest/v1/profiles/p1?client={code}", **token).status_code == 401
        return [q["sql"] for q in captured.captured_queries if "profiles_" in q["sql"]]

    # The queries of the product's tables (the throttle's cache aside).
    known, unknown = queries_of("demo"), queries_of("nobody")
    assert len(unknown) == len(known)
    assert [q for q in unknown if "profiles_profiletoken" in q]
    impossible = queries_of("de%00mo")
    assert [q for q in impossible if "profiles_profiletoken" in q]


# Methods, CSRF, logging, cost


def test_it_is_csrf_exempt_and_never_redirects_to_a_login_page(
    demo: Client, endpoint: Endpoint
) -> None:
    a_profile(demo)
    require_authentication(demo)
    strict = HttpClient(enforce_csrf_checks=True)
    response = endpoint.call(strict)
    assert response.status_code == 401
    assert "Location" not in response
    assert endpoint.call(strict, **bearer(issue_token(demo))).status_code == 200


def test_it_logs_a_refused_call_with_the_tokens_last_four_at_most(
    http: HttpClient,
    demo: Client,
    other_client: Client,
    endpoint: Endpoint,
    caplog: pytest.LogCaptureFixture,
) -> None:
    require_authentication(demo)
    acme_token = issue_token(other_client)
    with caplog.at_level(logging.WARNING, logger="profiles.api.gate"):
        endpoint.call(http, **bearer(acme_token))
        endpoint.call(http, **bearer(ADOBE_IO_LOGIN))
    refusals = [r.getMessage() for r in caplog.records if r.name == "profiles.api.gate"]
    assert len(refusals) == 2
    assert f"token=…{acme_token[-4:]}" in refusals[0]
    assert "token=-" in refusals[1]
    assert "client=demo" in caplog.text
    assert acme_token[:-4] not in caplog.text
    assert ADOBE_IO_LOGIN[-4:] not in caplog.text


def test_it_logs_why_a_call_was_refused_in_one_word(
    http: HttpClient, demo: Client, endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    require_authentication(demo)
    expired = issue_token(demo, days_ago=2, expires_in_days=1)
    with caplog.at_level(logging.WARNING, logger="profiles.api.gate"):
        endpoint.call(http)
        endpoint.call(http, **bearer(well_formed_unknown()))
        endpoint.call(http, **bearer(well_formed_unknown()), HTTP_ACCESS_TOKEN=expired)
    refusals = [r.getMessage() for r in caplog.records if r.name == "profiles.api.gate"]
    assert [line.split(" reason=")[1].split(" ")[0] for line in refusals] == [
        "missing",
        "invalid",
        "expired",
    ]


def test_it_spends_no_token_query_on_a_malformed_token(
    http: HttpClient, demo: Client, endpoint: Endpoint
) -> None:
    require_authentication(demo)
    issue_token(demo)
    with CaptureQueriesContext(connection) as queries:
        assert endpoint.call(http, **bearer("tpa_short")).status_code == 401
    assert not [q for q in queries.captured_queries if "profiles_profiletoken" in q["sql"]]


def test_it_takes_the_client_from_the_host_on_the_placeholder_path(
    http: HttpClient, demo: Client, endpoint: Endpoint
) -> None:
    if not endpoint.path.startswith("/m2/"):
        pytest.skip("the placeholder applies to /m2/ paths only")
    placeholder = Endpoint(
        endpoint.name, endpoint.method, "/m2/client/profile/update", endpoint.query
    )
    response = placeholder.call(http, HTTP_HOST="demo.localhost:8000")
    assert response.status_code == 200
    assert xml_fields(response)["pcId"] == PC_ID
    # An unknown host's client is refused as one requiring a token (see above).
    assert placeholder.call(http, HTTP_HOST="acme.localhost:8000").status_code == 401
    assert placeholder.call(http, HTTP_HOST="localhost").status_code == 401


# The contract future endpoints rely on, shown with the JSON API envelope

BULK = "/api/v1/clients/demo/profiles/bulk"


@pytest.mark.urls("tests.api_auth_urls")
def test_it_hands_the_view_its_client_and_renders_its_errors_in_the_chosen_envelope(
    demo: Client,
) -> None:
    http = HttpClient()
    ok = http.post(BULK, data='{"profiles": [1, 2]}', content_type="application/json")
    assert ok.json() == {"client": "demo", "count": 2}
    refused = http.post(BULK, data="{}", content_type="application/json")
    assert refused.status_code == 400
    assert refused.json() == {"error": {"code": "invalid", "message": "profiles is required"}}


@pytest.mark.urls("tests.api_auth_urls")
def test_it_answers_authentication_failures_in_the_chosen_envelope(demo: Client) -> None:
    require_authentication(demo)
    response = HttpClient().post(BULK, data="{}", content_type="application/json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"
    assert "required" in response.json()["error"]["message"]


@pytest.mark.urls("tests.api_auth_urls")
def test_it_turns_what_the_framework_cannot_decode_into_4xx_never_500(demo: Client) -> None:
    http = HttpClient()
    bad_json = http.post(BULK, data=b"\xff{", content_type="application/json")
    assert bad_json.status_code == 400
    assert bad_json.json()["error"]["code"] == "bad_request"
    for body in ('{"profiles": ', "[" * 100_000):
        response = http.post(BULK, data=body, content_type="application/json")
        assert response.status_code == 400
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100):
        too_big = http.post(BULK, data="x" * 101, content_type="application/json")
    assert too_big.status_code == 413
    many = "&".join(f"f{i}=1" for i in range(1001))
    too_many = http.post(
        "/api/v1/clients/demo/form", data=many, content_type="application/x-www-form-urlencoded"
    )
    assert too_many.status_code == 413
    not_found = http.get("/api/v1/clients/demo/missing")
    assert not_found.status_code == 404
    assert not_found.json()["error"]["code"] == "not_found"
    assert http.get(BULK).status_code == 405
