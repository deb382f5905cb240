"""docs/api.md#allowed-networks: a client's profile APIs answer only its allowed networks,
and docs/operations.md#configuration: the caller's address behind ``TRUSTED_PROXIES``."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client as HttpClient
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext, override_settings

from profiles.access.actors import SYSTEM, Actor
from profiles.access.addresses import caller_address
from profiles.access.models import AuditEvent
from profiles.access.throttle import PROFILE_API_FAILURES
from profiles.models import Client, ProfileApiSettings, ProfileToken
from profiles.tokens.models import MAX_ALLOWED_NETWORKS
from tests.profile_api import (
    ENDPOINTS,
    Endpoint,
    issue_token,
    message_of,
    require_authentication,
)
from tests.support import basic

# Through Django's test client and through the fast lane in front of it.
pytestmark = pytest.mark.usefixtures("both_doors")

RULE = "This client accepts profile API calls only from its allowed networks."
SETTINGS_URL = "/demo/target/clients/settings"


def allow(client: Client, *networks: str) -> None:
    ProfileApiSettings.for_client(client).set_allowed_networks(list(networks), actor=SYSTEM)


def from_address(address: str, **headers: str) -> dict[str, str]:
    return {"REMOTE_ADDR": address, **headers}


# The rule at the gate


def test_it_accepts_any_address_when_the_list_is_empty(
    http: HttpClient, endpoint: Endpoint
) -> None:
    assert endpoint.call(http, **from_address("203.0.113.9")).status_code == 200


def test_it_accepts_a_call_from_an_allowed_network(
    http: HttpClient, demo: Client, endpoint: Endpoint
) -> None:
    allow(demo, "192.0.2.0/24", "198.51.100.7")
    assert endpoint.call(http, **from_address("192.0.2.200")).status_code == 200
    assert endpoint.call(http, **from_address("198.51.100.7")).status_code == 200


def test_it_refuses_a_call_from_elsewhere_with_403_in_the_endpoints_envelope(
    http: HttpClient, demo: Client, endpoint: Endpoint
) -> None:
    allow(demo, "192.0.2.0/24")
    response = endpoint.call(http, **from_address("203.0.113.9"))
    assert response.status_code == 403
    assert message_of(response) == RULE
    assert b"192.0.2" not in response.content
    assert b"203.0.113" not in response.content


def test_it_refuses_a_call_from_elsewhere_even_with_the_valid_token(
    http: HttpClient, demo: Client, endpoint: Endpoint
) -> None:
    require_authentication(demo)
    token = issue_token(demo)
    allow(demo, "192.0.2.0/24")
    outside = endpoint.call(http, HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR="203.0.113.9")
    assert outside.status_code == 403
    inside = endpoint.call(http, HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR="192.0.2.1")
    assert inside.status_code == 200


def test_it_checks_the_network_before_the_token(http: HttpClient, demo: Client) -> None:
    require_authentication(demo)
    allow(demo, "192.0.2.0/24")
    endpoint = ENDPOINTS[0]
    outside = endpoint.call(http, HTTP_AUTHORIZATION="Bearer nope", REMOTE_ADDR="203.0.113.9")
    assert outside.status_code == 403
    inside = endpoint.call(http, HTTP_AUTHORIZATION="Bearer nope", REMOTE_ADDR="192.0.2.1")
    assert inside.status_code == 401


def test_it_does_not_record_a_token_use_from_elsewhere(http: HttpClient, demo: Client) -> None:
    require_authentication(demo)
    token = issue_token(demo)
    allow(demo, "192.0.2.0/24")
    ENDPOINTS[0].call(http, HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR="203.0.113.9")
    stored = ProfileToken.objects.get(client=demo)
    assert stored.last_used_at is None


def test_it_matches_ipv6_networks_and_ipv4_mapped_addresses(http: HttpClient, demo: Client) -> None:
    allow(demo, "2001:db8::/32", "192.0.2.0/24")
    endpoint = ENDPOINTS[0]
    assert endpoint.call(http, **from_address("2001:db8:1::5")).status_code == 200
    assert endpoint.call(http, **from_address("::ffff:192.0.2.8")).status_code == 200
    assert endpoint.call(http, **from_address("2001:db9::1")).status_code == 403


def test_it_answers_an_unknown_client_as_before_not_with_403(http: HttpClient) -> None:
    response = http.get("/rest/v1/profiles/x?client=nosuchclient", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 401


def test_it_spends_no_extra_query_on_the_check(http: HttpClient, demo: Client) -> None:
    endpoint = ENDPOINTS[0]
    with CaptureQueriesContext(connection) as open_list:
        endpoint.call(http, **from_address("192.0.2.1"))
    allow(demo, "192.0.2.0/24")
    with CaptureQueriesContext(connection) as with_list:
        endpoint.call(http, **from_address("192.0.2.1"))
    assert len(with_list) == len(open_list)


def test_it_logs_and_counts_a_refusal_toward_the_throttle(
    http: HttpClient, demo: Client, caplog: pytest.LogCaptureFixture
) -> None:
    allow(demo, "192.0.2.0/24")
    endpoint = ENDPOINTS[0]
    with (
        override_settings(PROFILE_API_AUTH_FAILURE_LIMIT=2),
        caplog.at_level(logging.WARNING, logger="profiles.api.gate"),
    ):
        statuses = [endpoint.call(http, **from_address("203.0.113.9")).status_code for _ in "abc"]
    assert statuses == [403, 403, 429]
    assert "client=demo address=203.0.113.9 reason=network not allowed" in caplog.text
    assert PROFILE_API_FAILURES.spent("198.51.100.1") is None


def test_it_leaves_the_management_api_and_the_pages_alone(demo: Client, alice: Any) -> None:
    allow(demo, "192.0.2.0/24")
    http = HttpClient(REMOTE_ADDR="203.0.113.9")
    assert http.get(SETTINGS_URL, headers=basic("alice")).status_code == 200
    http.force_login(alice)
    assert http.get("/").status_code in (200, 302)


# The caller's address


def request_from(peer: str, forwarded: str | None = None) -> Any:
    extra = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_it_ignores_x_forwarded_for_without_trusted_proxies() -> None:
    assert caller_address(request_from("203.0.113.9", "192.0.2.1")) == "203.0.113.9"


@override_settings(TRUSTED_PROXIES=("10.0.0.0/8",))
def test_it_ignores_a_spoofed_x_forwarded_for_from_an_untrusted_peer() -> None:
    assert caller_address(request_from("203.0.113.9", "192.0.2.1")) == "203.0.113.9"


@override_settings(TRUSTED_PROXIES=("10.0.0.0/8", "2001:db8:ffff::/48"))
@pytest.mark.parametrize(
    ("peer", "forwarded", "caller"),
    [
        ("10.0.0.1", "198.51.100.4", "198.51.100.4"),
        # The caller wrote the left-most entries itself: only the right-most untrusted counts.
        ("10.0.0.1", "192.0.2.1, 198.51.100.4", "198.51.100.4"),
        ("10.0.0.1", "192.0.2.1, 198.51.100.4, 10.0.0.7", "198.51.100.4"),
        ("2001:db8:ffff::1", "2001:db8:1::9", "2001:db8:1::9"),
        ("10.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3"),
        ("10.0.0.1", "", "10.0.0.1"),
        ("10.0.0.1", None, "10.0.0.1"),
        # Garbage from a trusted proxy: the peer, never a crash.
        ("10.0.0.1", "not-an-address", "10.0.0.1"),
        ("10.0.0.1", "192.0.2.1, 198.51.100.4:8080", "10.0.0.1"),
        ("10.0.0.1", ",,,", "10.0.0.1"),
    ],
)
def test_it_takes_the_right_most_untrusted_forwarded_address_behind_a_trusted_proxy(
    peer: str, forwarded: str | None, caller: str
) -> None:
    assert caller_address(request_from(peer, forwarded)) == caller


# How settings.py stores TRUSTED_PROXIES=::ffff:10.0.0.0/104 (environment.env_networks).
@override_settings(TRUSTED_PROXIES=("::ffff:a00:0/104",))
def test_it_trusts_a_proxy_named_by_its_ipv4_mapped_network() -> None:
    assert caller_address(request_from("10.0.0.1", "198.51.100.4")) == "198.51.100.4"
    assert caller_address(request_from("::ffff:10.0.0.1", "198.51.100.4")) == "198.51.100.4"
    assert caller_address(request_from("11.0.0.1", "198.51.100.4")) == "11.0.0.1"


@override_settings(TRUSTED_PROXIES=("10.0.0.0/8",))
def test_it_applies_the_allowlist_to_the_forwarded_address(http: HttpClient, demo: Client) -> None:
    allow(demo, "192.0.2.0/24")
    endpoint = ENDPOINTS[0]
    proxied = endpoint.call(http, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.5")
    assert proxied.status_code == 200
    spoofed = endpoint.call(http, REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="192.0.2.5")
    assert spoofed.status_code == 403
    prefixed = endpoint.call(
        http, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.5, 203.0.113.9"
    )
    assert prefixed.status_code == 403


# Setting the list


def test_it_normalises_and_dedupes_the_list_and_audits_a_change(demo: Client) -> None:
    settings = ProfileApiSettings.for_client(demo)
    changed = settings.set_allowed_networks(
        [" 192.0.2.77/24", "192.0.2.0/24", "2001:DB8::1/32", "198.51.100.7"],
        actor=Actor.person(None, "192.0.2.1"),
    )
    assert changed
    assert settings.allowed_networks == ["192.0.2.0/24", "2001:db8::/32", "198.51.100.7/32"]
    event = AuditEvent.objects.get()
    assert event.action == AuditEvent.Action.ALLOWED_NETWORKS_CHANGED
    assert event.detail == "192.0.2.0/24, 2001:db8::/32, 198.51.100.7/32"
    assert not settings.set_allowed_networks(
        ["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"], actor=SYSTEM
    )
    assert AuditEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("entries", "says"),
    [
        (["192.0.2.0/33"], "'192.0.2.0/33' is not a network in CIDR notation"),
        (["example.com"], "'example.com' is not a network"),
        ([""], "'' is not a network"),
        ([7], "must be a network in CIDR notation, as a string"),
        ([f"10.{i // 256}.{i % 256}.0/24" for i in range(MAX_ALLOWED_NETWORKS + 1)], "at most 100"),
    ],
)
def test_it_refuses_a_bad_entry_and_changes_nothing(
    demo: Client, entries: list[object], says: str
) -> None:
    with pytest.raises(ValidationError, match=says.replace("(", r"\(")):
        ProfileApiSettings.for_client(demo).set_allowed_networks(entries, actor=SYSTEM)
    assert ProfileApiSettings.for_client(demo).allowed_networks == []
    assert not AuditEvent.objects.exists()


def patch(body: object) -> Any:
    return HttpClient().patch(
        SETTINGS_URL, json.dumps(body), content_type="application/json", headers=basic("alice")
    )


def test_it_sets_and_clears_the_list_through_the_management_api(demo: Client, alice: Any) -> None:
    response = patch({"profileApiAllowedNetworks": ["192.0.2.9/24", "2001:db8::/32"]})
    assert response.status_code == 200
    assert response.json() == {
        "enableProfileApiAuthentication": False,
        "profileApiAllowedNetworks": ["192.0.2.0/24", "2001:db8::/32"],
        "profileTokenRetrievable": False,
    }
    got = HttpClient().get(SETTINGS_URL, headers=basic("alice")).json()
    assert got["profileApiAllowedNetworks"] == ["192.0.2.0/24", "2001:db8::/32"]
    cleared = patch({"profileApiAllowedNetworks": []})
    assert cleared.json()["profileApiAllowedNetworks"] == []
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions == [AuditEvent.Action.ALLOWED_NETWORKS_CHANGED] * 2


def test_it_saves_an_ipv4_mapped_entry_as_the_ipv4_network_callers_are_matched_in(
    http: HttpClient, demo: Client, alice: Any
) -> None:
    response = patch({"profileApiAllowedNetworks": ["::ffff:127.0.0.20", "::FFFF:192.0.2.0/120"]})

    assert response.json()["profileApiAllowedNetworks"] == ["127.0.0.20/32", "192.0.2.0/24"]
    endpoint = ENDPOINTS[0]
    assert endpoint.call(http, **from_address("127.0.0.20")).status_code == 200
    assert endpoint.call(http, **from_address("::ffff:192.0.2.9")).status_code == 200
    assert endpoint.call(http, **from_address("127.0.0.21")).status_code == 403


def test_it_matches_an_ipv4_mapped_entry_saved_before_entries_were_normalised(
    http: HttpClient, demo: Client
) -> None:
    ProfileApiSettings.for_client(demo)
    ProfileApiSettings.objects.filter(client=demo).update(
        allowed_networks=["::ffff:127.0.0.20/128"]
    )

    endpoint = ENDPOINTS[0]
    assert endpoint.call(http, **from_address("127.0.0.20")).status_code == 200
    assert endpoint.call(http, **from_address("127.0.0.21")).status_code == 403


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"profileApiAllowedNetworks": "192.0.2.0/24"}, "must be a list of at most 100"),
        ({"profileApiAllowedNetworks": ["192.0.2.0/33"]}, "'192.0.2.0/33' is not a network"),
        ({"profileApiAllowedNetworks": [None]}, "as a string"),
        (
            {},
            "Send at least one of enableProfileApiAuthentication, profileApiAllowedNetworks, profileTokenRetrievable.",
        ),
    ],
)
def test_it_refuses_a_bad_list_through_the_management_api(
    demo: Client, alice: Any, body: object, says: str
) -> None:
    response = patch(body)
    assert response.status_code == 400
    assert says in response.json()["errors"][0]["message"]
    assert ProfileApiSettings.for_client(demo).allowed_networks == []


@override_settings(TRUSTED_PROXIES=("10.0.0.0/8",))
def test_it_locks_sign_ins_out_by_the_same_caller_address() -> None:
    from axes.helpers import get_client_ip_address

    assert get_client_ip_address(request_from("10.0.0.1", "198.51.100.4")) == "198.51.100.4"
    assert get_client_ip_address(request_from("203.0.113.9", "198.51.100.4")) == "203.0.113.9"


# The card


def test_it_sets_and_clears_the_list_on_the_card(demo: Client, alice: Any) -> None:
    http = HttpClient()
    http.force_login(alice)
    url = "/setup/demo/implementation/"
    saved = http.post(
        url, {"allowed_networks": "192.0.2.9/24\r\n\r\n2001:db8::/32", "save_networks": "1"}
    )
    assert saved.status_code == 302
    assert ProfileApiSettings.for_client(demo).allowed_networks == ["192.0.2.0/24", "2001:db8::/32"]
    assert "192.0.2.0/24\n2001:db8::/32" in http.get(url).content.decode()
    http.post(url, {"allowed_networks": "", "save_networks": "1"})
    assert ProfileApiSettings.for_client(demo).allowed_networks == []
    event = AuditEvent.objects.filter(action=AuditEvent.Action.ALLOWED_NETWORKS_CHANGED).first()
    assert event is not None
    assert event.actor_label == "alice"
    assert event.detail == "any address"


def test_it_shows_a_bad_line_on_the_card_with_400_and_changes_nothing(
    demo: Client, alice: Any
) -> None:
    http = HttpClient()
    http.force_login(alice)
    response = http.post(
        "/setup/demo/implementation/",
        {"allowed_networks": "192.0.2.0/24\n10.0.0.0/99", "save_networks": "1"},
    )
    assert response.status_code == 400
    assert "&#x27;10.0.0.0/99&#x27; is not a network in CIDR notation" in response.content.decode()
    assert ProfileApiSettings.for_client(demo).allowed_networks == []


def test_it_lets_only_an_approver_set_the_list(demo: Client, bob: Any) -> None:
    http = HttpClient()
    http.force_login(bob)
    response = http.post(
        "/setup/demo/implementation/", {"allowed_networks": "192.0.2.0/24", "save_networks": "1"}
    )
    assert response.status_code in (403, 404)
    assert ProfileApiSettings.for_client(demo).allowed_networks == []
