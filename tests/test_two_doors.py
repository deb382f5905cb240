"""docs/operations.md#the-api-path: the fast lane and Django's views answer every profile
API call alike.

Each call is sent, as raw WSGI, through the lane (``FastLane`` in front of Django, as
``targetadmin.wsgi.application`` is) and through Django alone (the lane switched off), each
time from the same database state, and the two answers must match byte for byte: status
line, every header in order (but the request id, new on every call; a server adds
``Date``), body, and the log lines the call wrote. The calls are every bad input of
docs/bad-input.md that names a hot route, and the answers the API gives when nothing is
wrong. A call the lane leaves to Django is named as such, so a lane that took nothing would
fail here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

import pytest
from django.core.handlers.wsgi import WSGIRequest
from django.db import close_old_connections, transaction
from django.test import Client as HttpClient
from django.test import RequestFactory
from django.urls import Resolver404, resolve

import targetadmin.wsgi
from profiles.access.actors import SYSTEM
from profiles.api import fetch
from profiles.api.lane import ROUTES, FastLane
from profiles.models import Client, ProfileApiSettings
from tests.bad_input_catalogue import CASES, FORM, JSON, UPDATE, Case
from tests.bad_input_world import filled, prepare
from tests.fixtures import RootRecords
from tests.front_door import KeptConnections, raw_wsgi

FETCH = "/rest/v1/profiles/p1?client=demo"
BY_THIRD_PARTY_ID = "/rest/v1/profiles/thirdPartyId/u1?client=demo"
AUTHENTICATED = {"Authorization": "Bearer {token}"}


def names_a_hot_route(case: Case) -> bool:
    path = case.path.partition("?")[0]
    hot = path.startswith("/rest/v1/profiles/") or (
        path.startswith("/m2/") and path.endswith("/profile/update")
    )
    return case.transport == "test client" and hot


HOT_CASES = [case for case in CASES if names_a_hot_route(case)]

# The catalogue's calls to those paths that the lane leaves to Django: a method the endpoint
# does not take, a multipart body, and a path that decodes to no endpoint at all.
CATALOGUE_LEFT_TO_DJANGO = {
    "DELETE on the single update",
    "POST on the profile fetch",
    "multipart single update without a boundary",
    "encoded slashes in a fetched pcId",
}


# Calls that meet no refusal, and refusals the catalogue words elsewhere.
ANSWERS = [
    Case("answer", "update by GET", "GET", f"{UPDATE}?mboxPC=p1&profile.city=Paris", 200, ""),
    Case(
        "answer",
        "update by form POST",
        "POST",
        UPDATE,
        200,
        "",
        body=b"mbox3rdPartyId=u1&profile.tier=gold&mbox=target-global-mbox",
        content_type=FORM,
    ),
    Case(
        "answer",
        "update by JSON POST",
        "POST",
        f"{UPDATE}?mboxPC=p1",
        200,
        "",
        body=b'{"profile.age": 42, "profile.city": "K\\u00f6ln"}',
        content_type=JSON,
    ),
    Case(
        "answer",
        "update of a profile that does not exist",
        "GET",
        f"{UPDATE}?mboxPC=nobody&profile.a=1",
        404,
        "",
    ),
    Case(
        "answer",
        "update with the token",
        "POST",
        f"{UPDATE}?mboxPC=p1&profile.a=1",
        200,
        "",
        headers=AUTHENTICATED,
        authentication=True,
    ),
    Case(
        "answer",
        "update on the placeholder path, client from the Host",
        "GET",
        "/m2/client/profile/update?mboxPC=p1&profile.a=1",
        200,
        "",
        headers={"Host": "demo.localhost:8000"},
    ),
    Case("answer", "fetch by pcId", "GET", FETCH, 200, ""),
    Case("answer", "fetch by thirdPartyId", "GET", BY_THIRD_PARTY_ID, 200, ""),
    Case(
        "answer",
        "fetch with the token and the caller's request id",
        "GET",
        FETCH,
        200,
        "",
        headers={**AUTHENTICATED, "X-Request-ID": "lb-1.2"},
        authentication=True,
    ),
    Case(
        "answer",
        "fetch of a percent-encoded id",
        "GET",
        "/rest/v1/profiles/p%31?client=demo",
        200,
        "",
    ),
    Case("answer", "fetch of no profile", "GET", "/rest/v1/profiles/nobody?client=demo", 404, ""),
    Case("answer", "fetch without the client", "GET", "/rest/v1/profiles/p1", 400, ""),
    Case("answer", "fetch without a token", "GET", FETCH, 401, "", authentication=True),
    Case(
        "answer",
        "fetch from outside the allowed networks",
        "GET",
        FETCH,
        403,
        "",
        headers={"X-Real": "elsewhere"},
        settings={"allowed": "192.0.2.0/24"},
    ),
    Case(
        "answer",
        "fetch over HTTPS, with HSTS",
        "GET",
        FETCH,
        200,
        "",
        settings={"SECURE_HSTS_SECONDS": 600, "SECURE_HSTS_PRELOAD": True, "secure": True},
    ),
]

MULTIPART_TYPE = "multipart/form-data"
MULTIPART = (
    b'--b\r\nContent-Disposition: form-data; name="mboxPC"\r\n\r\np1\r\n'
    b'--b\r\nContent-Disposition: form-data; name="profile.a"\r\n\r\n1\r\n--b--\r\n'
)

# What the lane leaves to Django, by design (docs/operations.md#the-api-path).
LEFT_TO_DJANGO = {
    "fetch of a Host ALLOWED_HOSTS refuses": Case(
        "django", "", "GET", FETCH, 400, "", headers={"Host": "evil.example"}
    ),
    "plain HTTP under SECURE_SSL_REDIRECT": Case(
        "django", "", "GET", FETCH, 301, "", settings={"SECURE_SSL_REDIRECT": True}
    ),
    "a method the endpoint does not take": Case(
        "django", "", "PUT", f"{UPDATE}?mboxPC=p1&profile.a=1", 405, ""
    ),
    "a multipart update": Case(
        "django",
        "",
        "POST",
        UPDATE,
        200,
        "",
        body=MULTIPART,
        content_type=f"{MULTIPART_TYPE}; boundary=b",
    ),
    # Django's multipart parser refuses a media type not written in lower case.
    "a multipart update whose media type is not in lower case": Case(
        "django",
        "",
        "POST",
        UPDATE,
        400,
        "",
        body=MULTIPART,
        content_type="Multipart/Form-Data; boundary=b",
    ),
    "a query string with more fields than Django parses": Case(
        "django", "", "GET", FETCH + "&x=" * 1001, 400, ""
    ),
}

CONTRACT = [
    *[
        pytest.param(case, case.what not in CATALOGUE_LEFT_TO_DJANGO, id=f"catalogue: {case.what}")
        for case in HOT_CASES
    ],
    *[pytest.param(case, True, id=case.what) for case in ANSWERS],
    *[pytest.param(case, False, id=f"Django: {what}") for what, case in LEFT_TO_DJANGO.items()],
]

UNCOMPARED_HEADERS = {"x-request-id", "date"}


def environ_of(case: Case, world: dict[str, str]) -> dict[str, Any]:
    headers = {name: filled(value, world) for name, value in case.headers.items()}
    extra: dict[str, Any] = {"content_type": case.content_type} if case.content_type else {}
    if "Host" in headers:
        extra["HTTP_HOST"] = headers.pop("Host")
    if "X-Real" in headers:
        extra["REMOTE_ADDR"] = "203.0.113.9"
        headers.pop("X-Real")
    request = RequestFactory().generic(
        case.method,
        filled(case.path, world),
        data=case.body,
        secure=bool(case.settings.get("secure")),
        headers=headers,
        **extra,
    )
    return request.environ


def answered(app: Any, environ: dict[str, Any], log: RootRecords) -> tuple[Any, ...]:
    """The answer as a server gets it, and the log lines written, from a state undone after."""
    del log.records[:]
    with transaction.atomic():
        status, headers, body = raw_wsgi(app, environ)
        transaction.set_rollback(True)
    assert any(name.lower() == "x-request-id" for name, _ in headers)
    kept = [(name, value) for name, value in headers if name.lower() not in UNCOMPARED_HEADERS]
    return status, kept, body, list(log.lines)


@pytest.mark.parametrize(("case", "lane_takes"), CONTRACT)
def test_both_doors_answer_alike(
    case: Case,
    lane_takes: bool,
    world: dict[str, str],
    demo: Client,
    settings: Any,
    root_records: RootRecords,
) -> None:
    product_settings = {
        name: value for name, value in case.settings.items() if name not in ("secure", "allowed")
    }
    prepare(Case(**{**case.__dict__, "settings": product_settings}), world, demo, settings)
    if "allowed" in case.settings:
        ProfileApiSettings.for_client(demo).set_allowed_networks(
            [case.settings["allowed"]], actor=SYSTEM
        )
    django = KeptConnections()
    lane = FastLane(django, keep_connections=lambda: None)

    assert (lane.take(environ_of(case, world)) is not None) is lane_takes
    through_lane = answered(lane, environ_of(case, world), root_records)
    through_django = answered(django, environ_of(case, world), root_records)

    assert through_lane == through_django
    assert through_lane[0].startswith(str(case.status))


def test_the_wsgi_application_is_the_lane_in_front_of_django() -> None:
    application = targetadmin.wsgi.application
    assert isinstance(application, FastLane)
    assert application.django is targetadmin.wsgi.django_application
    assert len(application.routes) == len(ROUTES)
    # Connections are kept as Django's request signals keep them.
    assert application.keep_connections is close_old_connections


def test_both_doors_answer_a_server_error_alike(
    world: dict[str, str], demo: Client, root_records: RootRecords, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(fetch, "find", broken)
    django = KeptConnections()
    lane = FastLane(django, keep_connections=lambda: None)
    case = Case("answer", "a fetch that fails", "GET", FETCH, 500, "")

    through_lane = answered(lane, environ_of(case, world), root_records)
    through_django = answered(django, environ_of(case, world), root_records)

    assert through_lane == through_django
    assert through_lane[0] == "500 Internal Server Error"
    assert (
        "django.request",
        "ERROR",
        "Internal Server Error: /rest/v1/profiles/p1",
    ) in through_lane[3]


@pytest.mark.parametrize(
    "path",
    [
        "/m2/demo/profile/update",
        "/m2/client/profile/update",
        "/m2/target/profile/update",
        "/m2/d%C3%A9mo/profile/update",
        "/m2/d%FFmo/profile/update",
        "/m2/demo/profile/update/",
        "/m2//profile/update",
        "/m2/a/b/profile/update",
        "/m2/a%2Fb/profile/update",
        "/M2/demo/profile/update",
        "/m2/demo/profile/batchUpdate",
        "/rest/v1/profiles/p1",
        "/rest/v1/profiles/p%201",
        "/rest/v1/profiles/",
        "/rest/v1/profiles/p1/",
        "/rest/v1/profiles/thirdPartyId",
        "/rest/v1/profiles/thirdPartyId/",
        "/rest/v1/profiles/thirdPartyId/u1",
        "/rest/v1/profiles/thirdPartyId/u1/x",
        "/rest/v1/profiles/thirdPartyId/%E2%9C%93",
        "/rest/v1/profiles/..%2F..%2Fetc",
    ],
)
def test_the_lane_takes_a_path_exactly_when_django_routes_it_to_the_same_view(
    db: None, path: str
) -> None:
    environ = RequestFactory().get("/", {"client": "demo"}).environ
    # As a WSGI server passes it: the path's bytes, percent-decoded, as ISO-8859-1 text.
    environ["PATH_INFO"] = unquote_to_bytes(path).decode("iso-8859-1")
    taken = FastLane(KeptConnections(), keep_connections=lambda: None).take(environ)
    try:
        match = resolve(WSGIRequest(environ).path_info)
    except Resolver404:
        match = None
    lane_views = {route[2] for route in ROUTES}
    if match is None or match.func not in lane_views:
        assert taken is None
    else:
        assert taken is not None
        assert (taken.view, taken.kwargs) == (match.func, match.kwargs)


def test_the_lanes_answer_over_https_carries_hsts_as_the_settings_say(
    world: dict[str, str], demo: Client, settings: Any, root_records: RootRecords
) -> None:
    settings.SECURE_HSTS_SECONDS = 600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    lane = FastLane(KeptConnections(), keep_connections=lambda: None)
    over_https = Case("answer", "", "GET", FETCH, 200, "", settings={"secure": True})
    over_http = Case("answer", "", "GET", FETCH, 200, "")

    _, secure_headers, _, _ = answered(lane, environ_of(over_https, world), root_records)
    _, plain_headers, _, _ = answered(lane, environ_of(over_http, world), root_records)

    hsts = ("Strict-Transport-Security", "max-age=600; includeSubDomains")
    assert hsts in secure_headers
    assert "Strict-Transport-Security" not in dict(plain_headers)
    assert ("X-Content-Type-Options", "nosniff") in plain_headers


def test_the_front_door_sends_the_test_clients_hot_calls_through_the_lane(
    demo: Client, client: HttpClient, through_the_front_door: None
) -> None:
    fetched = client.get(FETCH)
    checked = client.get("/healthz")

    assert fetched.status_code == 404
    assert getattr(fetched, "served_by_lane", False) is True
    assert checked.status_code == 200
    assert getattr(checked, "served_by_lane", False) is False
