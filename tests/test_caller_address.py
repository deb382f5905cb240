"""Where the caller's address comes from, and how the throttles and the lockout count it.

Behind ``TRUSTED_PROXIES`` only what the proxy wrote names the caller: under a real gunicorn
(gunicorn.conf.py), a header spelled with underscores (``X_Forwarded_For``) cannot add to
``X-Forwarded-For``, and gunicorn takes neither the scheme nor ``SCRIPT_NAME`` from a
header (adapters/gunicorn_worker.py, docs/operations.md#configuration). The throttles and
the sign-in lockout count an IPv6 caller by its /64; the allowlist, the audit trail, the
tokens' last use and the logs keep the whole address (profiles/access/addresses.py).
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client as HttpClient
from django.test.utils import override_settings

from profiles.access.addresses import counted_as
from profiles.access.throttle import BASIC_SIGN_IN_FAILURES, PROFILE_API_FAILURES
from profiles.models import Client, ProfileToken
from tests.bad_input_catalogue import CASES, Case
from tests.gunicorn_server import ROOT, Server, gunicorn, in_shell
from tests.profile_api import PC_ID, a_profile, issue_token, require_authentication
from tests.support import PASSWORD, basic
from tests.test_management_api import SETTINGS_URL, assert_error

FETCH = f"/rest/v1/profiles/{PC_ID}"
NETWORK_RULE = "This client accepts profile API calls only from its allowed networks."
# Refused calls an address may make before 429, in the server below.
FAILURE_LIMIT = 3
SERVER = {
    "WEB_CONCURRENCY": "1",
    "TRUSTED_PROXIES": "127.0.0.1/32",
    "PROFILE_API_AUTH_FAILURE_LIMIT": str(FAILURE_LIMIT),
}

# Through a real gunicorn ------------------------------------------------------------------

SETUP = """
import json
from profiles.access.actors import SYSTEM
from profiles.models import Client, ProfileApiSettings
from tests.profile_api import a_profile, issue_token, require_authentication

tokens = {}
for code in ("demo", "acme"):
    client = Client.objects.create(code=code, name=code)
    require_authentication(client)
    a_profile(client, city="Lyon")
    tokens[code] = issue_token(client)
ProfileApiSettings.for_client(Client.objects.get(code="demo")).set_allowed_networks(
    ["10.20.30.0/24"], actor=SYSTEM
)
print(json.dumps(tokens))
"""


@dataclass(frozen=True)
class Deployment:
    """gunicorn believing X-Forwarded-For from 127.0.0.1, as it does behind nginx there.

    demo answers only 10.20.30.0/24; acme anyone. Both require their token.
    """

    server: Server
    var_dir: Path
    tokens: dict[str, str]

    def call(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes = b""
    ) -> tuple[int, str]:
        """Send the headers exactly as written (names, spellings and order)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        try:
            connection.putrequest(method, path, skip_accept_encoding=True)
            for name, value in headers:
                connection.putheader(name, value)
            if body:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            response = connection.getresponse()
            return response.status, response.read().decode(errors="replace")
        finally:
            connection.close()

    def fetch(self, code: str, *headers: tuple[str, str], token: str | None = None) -> int:
        bearer = ("Authorization", f"Bearer {token or self.tokens[code]}")
        status, _ = self.call("GET", f"{FETCH}?client={code}", [bearer, *headers])
        return status

    def last_used_from(self, code: str) -> str | None:
        with closing(sqlite3.connect(self.var_dir / "targetadmin.sqlite3")) as database:
            (address,) = database.execute(
                "SELECT t.last_used_from FROM profiles_profiletoken t"
                " JOIN profiles_client c ON c.id = t.client_id WHERE c.code = ?",
                (code,),
            ).fetchone()
        return address  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    var_dir = tmp_path_factory.mktemp("caller-address")
    with gunicorn(var_dir, **SERVER) as server:
        tokens = json.loads(in_shell(var_dir, SETUP).splitlines()[-1])
        yield Deployment(server, var_dir, tokens)


def test_the_allowlist_refuses_a_caller_whatever_an_underscore_header_names(
    deployed: Deployment,
) -> None:
    assert deployed.fetch("demo", ("X-Forwarded-For", "10.20.30.5")) == 200
    # Every spelling gunicorn would read as X-Forwarded-For, before and after the real one;
    # each from a caller of its own, so that no refusal is throttled.
    spellings = ("X_Forwarded_For", "x-forwarded_for", "X_FORWARDED-FOR")
    for caller, (name, spoofed_last) in enumerate(
        [(name, last) for name in spellings for last in (True, False)], start=100
    ):
        headers = [("X-Forwarded-For", f"203.0.113.{caller}"), (name, "10.20.30.5")]
        status, body = deployed.call(
            "GET",
            f"{FETCH}?client=demo",
            [("Authorization", f"Bearer {deployed.tokens['demo']}")]
            + (headers if spoofed_last else headers[::-1]),
        )
        assert status == 403, (name, spoofed_last)
        assert NETWORK_RULE in body


def test_the_last_use_is_recorded_from_the_address_the_proxy_wrote(deployed: Deployment) -> None:
    spoofed = [("X-Forwarded-For", "203.0.113.10"), ("X_Forwarded_For", "198.51.100.77")]
    assert deployed.fetch("acme", *spoofed) == 200
    assert deployed.last_used_from("acme") == "203.0.113.10"


def test_refused_calls_are_throttled_whatever_address_an_underscore_header_names(
    deployed: Deployment,
) -> None:
    statuses = [
        deployed.fetch(
            "acme",
            ("X-Forwarded-For", "198.51.100.20"),
            ("X_Forwarded_For", f"10.0.0.{attempt}"),
            token="tpa_wrong",
        )
        for attempt in range(FAILURE_LIMIT + 2)
    ]
    assert statuses == [401] * FAILURE_LIMIT + [429, 429]


def test_the_legacy_access_token_header_still_reaches_the_application(
    deployed: Deployment,
) -> None:
    status, _ = deployed.call(
        "GET", f"{FETCH}?client=acme", [("access_token", deployed.tokens["acme"])]
    )
    assert status == 200


@pytest.mark.parametrize(
    "case",
    [case for case in CASES if case.transport == "gunicorn headers"],
    ids=lambda case: case.what,
)
def test_the_catalogues_cases_for_gunicorn_get_their_status_and_message(
    deployed: Deployment, case: Case
) -> None:
    assert case.authentication  # demo requires its token here
    assert {name: str(value) for name, value in case.settings.items()}.items() <= SERVER.items()
    headers = [
        (name, value.replace("{token}", deployed.tokens["demo"]))
        for name, value in case.headers.items()
    ]
    status, body = deployed.call(case.method, case.path, headers, case.body)
    assert status == case.status, body
    assert case.message in body


def batch_status_url(deployed: Deployment, *headers: tuple[str, str]) -> str:
    """The ``batchStatus`` link of the answer to a batch file sent to acme with ``headers``."""
    status, answer = deployed.call(
        "POST",
        "/m2/acme/v2/profile/batchUpdate",
        [
            ("Authorization", f"Bearer {deployed.tokens['acme']}"),
            ("Content-Type", "application/x-www-form-urlencoded"),
            *headers,
        ],
        b"batch=pcId,city\nbatch-1,Lyon\n",
    )
    assert status == 200, answer
    return ElementTree.fromstring(answer).findtext("batchStatus") or ""  # noqa: S314


def test_gunicorn_takes_no_scheme_from_a_header(deployed: Deployment) -> None:
    # TRUST_X_FORWARDED_PROTO is off: the answer's own links keep the connection's scheme.
    url = batch_status_url(deployed, ("X-Forwarded-Proto", "https"), ("X-Forwarded-Ssl", "on"))
    assert url.startswith(f"http://127.0.0.1:{deployed.server.port}/m2/acme/"), url


def test_gunicorn_takes_no_script_name_from_a_header(deployed: Deployment) -> None:
    # Taken, it would serve /m2/acme/… as /acme/… under the prefix /m2.
    url = batch_status_url(deployed, ("SCRIPT_NAME", "/m2"))
    assert url.startswith(f"http://127.0.0.1:{deployed.server.port}/m2/acme/"), url


def test_the_callers_address_is_read_in_one_place() -> None:
    # The allowlist, the throttles, the lockout (AXES_CLIENT_IP_CALLABLE), the audit trail,
    # the last use and the logs all ask profiles/access/addresses.py.
    reads = re.compile(r"""["'](REMOTE_ADDR|HTTP_X_FORWARDED_FOR|X-Forwarded-For)["']""")
    readers = sorted(
        str(path.relative_to(ROOT))
        for package in ("profiles", "targetadmin")
        for path in (ROOT / package).rglob("*.py")
        if reads.search(path.read_text())
    )
    assert readers == ["profiles/access/addresses.py"]
    assert settings.AXES_CLIENT_IP_CALLABLE.startswith("profiles.access.addresses.")


# Counting an IPv6 caller by its /64 -------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "counted"),
    [
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::"),
        ("2001:db8:1:2::1", "2001:db8:1:2::"),
        ("2001:db8:1:3::1", "2001:db8:1:3::"),
        ("192.0.2.1", "192.0.2.1"),
        # IPv4-mapped IPv6 is IPv4: not every IPv4 caller in one ::ffff:0:0/64.
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("unknown", "unknown"),
    ],
)
def test_an_ipv6_caller_is_counted_by_its_64_and_an_ipv4_caller_by_its_address(
    address: str, counted: str
) -> None:
    assert counted_as(address) == counted


@override_settings(PROFILE_API_AUTH_FAILURE_LIMIT=2, MANAGEMENT_API_BASIC_FAILURE_LIMIT=2)
@pytest.mark.parametrize("budget", [PROFILE_API_FAILURES, BASIC_SIGN_IN_FAILURES])
def test_the_throttles_count_the_addresses_of_one_64_together(db: None, budget: Any) -> None:
    start = 6_000_000.0
    assert budget.count("2001:db8:1:2::1", now=start) is None
    assert budget.count("2001:db8:1:2:ffff::9", now=start) is None
    assert budget.count("2001:db8:1:2:abcd:1234:5678:9abc", now=start) is not None
    assert budget.spent("2001:db8:1:2::99", now=start) is not None
    assert budget.spent("2001:db8:1:3::1", now=start) is None
    assert budget.count("192.0.2.1", now=start) is None
    assert budget.count("192.0.2.2", now=start) is None
    assert budget.spent("192.0.2.3", now=start) is None


@override_settings(PROFILE_API_AUTH_FAILURE_LIMIT=2)
def test_refused_profile_api_calls_rotating_through_a_64_are_throttled_and_logged_whole(
    demo: Client, caplog: pytest.LogCaptureFixture
) -> None:
    require_authentication(demo)
    http = HttpClient()
    url = f"{FETCH}?client=demo"
    with caplog.at_level(logging.WARNING, logger="profiles.api.gate"):
        statuses = [
            http.get(url, REMOTE_ADDR=f"2001:db8:1:2::{n:x}").status_code for n in range(1, 5)
        ]
        elsewhere = http.get(url, REMOTE_ADDR="2001:db8:1:3::1").status_code
    assert statuses == [401, 401, 429, 429]
    assert elsewhere == 401
    assert "address=2001:db8:1:2::3 " in caplog.text


def test_the_lockout_counts_wrong_passwords_from_one_64_together(alice: User, demo: Client) -> None:
    http = HttpClient()
    limit = settings.AXES_FAILURE_LIMIT
    statuses = [
        http.get(
            SETTINGS_URL, headers=basic("alice", "wrong"), REMOTE_ADDR=f"2001:db8:1:2::{n:x}"
        ).status_code
        for n in range(1, limit + 1)
    ]
    assert statuses == [401] * (limit - 1) + [429]
    locked = http.get(
        SETTINGS_URL, headers=basic("alice", PASSWORD), REMOTE_ADDR="2001:db8:1:2:ffff::1"
    )
    assert_error(locked, 429, "Authentication.LockedOut")
    elsewhere = http.get(SETTINGS_URL, headers=basic("alice"), REMOTE_ADDR="2001:db8:1:3::1")
    assert elsewhere.status_code == 200
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"2001:db8:1:2::"}


def test_the_last_use_keeps_the_whole_ipv6_address(demo: Client) -> None:
    require_authentication(demo)
    a_profile(demo, city="Lyon")
    token = issue_token(demo)
    response = HttpClient().get(
        f"{FETCH}?client=demo",
        headers={"Authorization": f"Bearer {token}"},
        REMOTE_ADDR="2001:db8:1:2::77",
    )
    assert response.status_code == 200
    assert ProfileToken.objects.get(client=demo).last_used_from == "2001:db8:1:2::77"
