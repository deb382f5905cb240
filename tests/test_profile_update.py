"""docs/api.md#single-profile-update: the single profile update, update-only, through the one ingest pipeline."""

from __future__ import annotations

import json
from io import StringIO
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.http import HttpResponse
from django.test import Client as HttpClient
from django.test.utils import override_settings

from profiles.models import Client, Profile
from profiles.rules.limits import MAX_PROFILE_ATTRIBUTES_BYTES
from profiles.store import encoded_size
from tests.profile_api import (
    PC_ID,
    THIRD_PARTY_ID,
    a_profile,
    issue_token,
    message_of,
    require_authentication,
    xml_fields,
)

URL = "/m2/demo/profile/update"
FORM = "application/x-www-form-urlencoded"
# A stamp as long as the one a live update writes (UTC offset, microseconds).
STAMP = "2026-11-26T18:00:00.000001+00:00"


@pytest.fixture
def http(demo: Client) -> HttpClient:
    a_profile(demo, city="Lyon", tier="gold")
    return HttpClient()


def stored(client: Client, pc_id: str = PC_ID) -> dict[str, str]:
    profile = Profile.objects.get(client=client, pc_id=pc_id)
    return {name: entry["value"] for name, entry in profile.attributes.items()}


def assert_bad_request(response: HttpResponse, status: int, says: str) -> None:
    assert response.status_code == status
    assert says in message_of(response)


def test_it_answers_adobes_exact_success_body(http: HttpClient) -> None:
    response = http.get(f"{URL}?mboxPC={PC_ID}&profile.city=Paris")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml; charset=utf-8"
    assert response.content.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<response><success>true</success><pcId>{PC_ID}</pcId>"
        "<message>Request successfully submitted</message></response>"
    )


def test_it_merges_by_pc_id_and_keeps_the_attributes_not_named(
    http: HttpClient, demo: Client
) -> None:
    before = Profile.objects.get(pc_id=PC_ID).attributes["tier"]["modifiedAt"]
    assert http.get(f"{URL}?mboxPC={PC_ID}&profile.city=Paris&profile.age=21").status_code == 200
    assert stored(demo) == {"city": "Paris", "tier": "gold", "age": "21"}
    attributes = Profile.objects.get(pc_id=PC_ID).attributes
    assert attributes["tier"]["modifiedAt"] == before
    assert attributes["city"]["modifiedAt"] > before


def test_it_updates_by_third_party_id_and_answers_the_pc_id(http: HttpClient, demo: Client) -> None:
    response = http.get(f"{URL}?mbox3rdPartyId={THIRD_PARTY_ID}&profile.city=Paris")
    assert xml_fields(response)["pcId"] == PC_ID
    assert stored(demo)["city"] == "Paris"


def test_it_takes_parameters_from_a_form_encoded_post_body(http: HttpClient, demo: Client) -> None:
    body = f"mboxPC={PC_ID}&profile.city=New+York%20City&profile.note=a%2Bb"
    response = http.post(URL, data=body, content_type=FORM)
    assert response.status_code == 200
    assert stored(demo)["city"] == "New York City"
    assert stored(demo)["note"] == "a+b"


def test_it_takes_parameters_from_a_multipart_post_body(http: HttpClient, demo: Client) -> None:
    response = http.post(URL, data={"mboxPC": PC_ID, "profile.city": "Nice"})
    assert response.status_code == 200
    assert stored(demo)["city"] == "Nice"


def test_it_takes_parameters_from_a_json_post_body(http: HttpClient, demo: Client) -> None:
    body = {"mbox3rdPartyId": THIRD_PARTY_ID, "profile.city": "Rome", "profile.age": 21}
    response = http.post(URL, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200
    assert stored(demo) == {"city": "Rome", "tier": "gold", "age": "21"}


def test_it_lets_the_body_override_the_query(http: HttpClient, demo: Client) -> None:
    response = http.post(
        f"{URL}?mboxPC={PC_ID}&profile.city=Paris", data="profile.city=Oslo", content_type=FORM
    )
    assert response.status_code == 200
    assert stored(demo)["city"] == "Oslo"


def test_it_ignores_other_parameters(http: HttpClient, demo: Client) -> None:
    query = (
        f"mbox=target-global-mbox&mboxSession=abc&mboxPC={PC_ID}&at_property=x&profile.city=Bern"
    )
    assert http.get(f"{URL}?{query}").status_code == 200
    assert stored(demo) == {"city": "Bern", "tier": "gold"}


def test_it_ignores_empty_values_and_never_clears_a_stored_one(
    http: HttpClient, demo: Client
) -> None:
    response = http.get(f"{URL}?mboxPC={PC_ID}&profile.city=&profile.tier=silver")
    assert response.status_code == 200
    assert stored(demo) == {"city": "Lyon", "tier": "silver"}
    only_empty = http.get(f"{URL}?mbox3rdPartyId={THIRD_PARTY_ID}&profile.city=")
    assert xml_fields(only_empty)["pcId"] == PC_ID
    assert stored(demo) == {"city": "Lyon", "tier": "silver"}


def test_it_updates_only_and_never_creates_a_profile(http: HttpClient, demo: Client) -> None:
    response = http.get(f"{URL}?mboxPC=404&profile.city=Paris")
    assert_bad_request(response, 404, "No profile found for client demo with mboxPC=404")
    response = http.get(f"{URL}?mbox3rdPartyId=nobody&profile.city=")
    assert_bad_request(response, 404, "No profile found for client demo with third party id=nobody")
    assert Profile.objects.count() == 1


def test_it_never_touches_another_clients_profile(
    http: HttpClient, demo: Client, other_client: Client
) -> None:
    response = http.get(f"/m2/acme/profile/update?mboxPC={PC_ID}&profile.city=Paris")
    assert response.status_code == 404
    assert stored(demo)["city"] == "Lyon"


def test_it_refuses_a_call_without_profile_parameters(http: HttpClient) -> None:
    assert_bad_request(http.get(f"{URL}?mboxPC={PC_ID}&city=Paris"), 400, "profile.")


def test_it_refuses_a_call_naming_neither_or_both_ids(http: HttpClient) -> None:
    assert_bad_request(http.get(f"{URL}?profile.city=Paris"), 400, "mboxPC or mbox3rdPartyId")
    assert_bad_request(http.get(f"{URL}?mboxPC=&profile.city=Paris"), 400, "mboxPC or mbox3rd")
    both = http.get(f"{URL}?mboxPC={PC_ID}&mbox3rdPartyId={THIRD_PARTY_ID}&profile.city=Paris")
    assert_bad_request(both, 400, "not both")


def test_it_refuses_other_methods_in_the_xml_envelope(http: HttpClient) -> None:
    response = http.put(f"{URL}?mboxPC={PC_ID}&profile.city=Paris")
    assert_bad_request(response, 405, "not allowed")
    assert response["Allow"] == "GET, POST"


# Limits, at and just past each boundary


def query_of_length(length: int, head: str = f"mboxPC={PC_ID}&profile.city=Paris") -> str:
    query = f"{head}&pad="
    return query + "x" * (length - len(query))


def test_it_accepts_a_get_query_of_8_kb_and_refuses_one_byte_more(
    http: HttpClient, demo: Client
) -> None:
    assert http.get(f"{URL}?{query_of_length(8192)}").status_code == 200
    response = http.get(f"{URL}?{query_of_length(8193)}")
    assert_bad_request(response, 413, "8192 bytes")


def test_it_accepts_a_post_of_60_kb_and_refuses_one_byte_more(
    http: HttpClient, demo: Client
) -> None:
    assert http.post(URL, data=query_of_length(61440), content_type=FORM).status_code == 200
    response = http.post(URL, data=query_of_length(61441), content_type=FORM)
    assert_bad_request(response, 413, "61440 bytes")
    in_query_and_body = http.post(f"{URL}?pad=x", data=query_of_length(61440), content_type=FORM)
    assert in_query_and_body.status_code == 413


def test_it_accepts_a_json_post_between_8_and_60_kb(http: HttpClient, demo: Client) -> None:
    body = {"mboxPC": PC_ID, **{f"profile.a{i}": "v" * 200 for i in range(200)}}
    encoded = json.dumps(body)
    assert 8 * 1024 < len(encoded) < 60 * 1024
    response = http.post(URL, data=encoded, content_type="application/json")
    assert response.status_code == 200
    assert len(stored(demo)) == 202


def test_it_accepts_names_of_128_characters_and_refuses_129(http: HttpClient, demo: Client) -> None:
    assert http.get(f"{URL}?mboxPC={PC_ID}&profile.{'n' * 128}=1").status_code == 200
    response = http.get(f"{URL}?mboxPC={PC_ID}&profile.{'n' * 129}=1")
    assert_bad_request(response, 400, "longer than 128")
    assert_bad_request(http.get(f"{URL}?mboxPC={PC_ID}&profile.=1"), 400, "empty")
    response = http.get(f"{URL}?mboxPC={PC_ID}&profile.profile.city=1")
    assert_bad_request(response, 400, "must not start with 'profile.'")


def test_it_accepts_values_of_256_characters_and_refuses_257(
    http: HttpClient, demo: Client
) -> None:
    assert http.get(f"{URL}?mboxPC={PC_ID}&profile.city={'v' * 256}").status_code == 200
    response = http.get(f"{URL}?mboxPC={PC_ID}&profile.city={'w' * 257}")
    assert_bad_request(response, 400, "longer than 256")
    assert stored(demo)["city"] == "v" * 256


def test_it_accepts_third_party_ids_of_256_characters_and_refuses_257_or_plus_or_slash(
    http: HttpClient, demo: Client
) -> None:
    Profile.objects.create(client=demo, pc_id="p-long", third_party_id="t" * 256)
    ok = http.get(f"{URL}?mbox3rdPartyId={'t' * 256}&profile.city=Paris")
    assert xml_fields(ok)["pcId"] == "p-long"
    too_long = http.get(f"{URL}?mbox3rdPartyId={'t' * 257}&profile.city=Paris")
    assert_bad_request(too_long, 400, "longer than 256")
    plus = http.get(f"{URL}?mbox3rdPartyId=a%2Bb&profile.city=Paris")
    assert_bad_request(plus, 400, "'+' or '/'")
    slash = http.get(f"{URL}?mbox3rdPartyId=a%2Fb&profile.city=Paris")
    assert_bad_request(slash, 400, "'+' or '/'")


def profile_of_size(client: Client, size_after_pad: int, pad_length: int) -> None:
    """A profile that reaches ``size_after_pad`` bytes once ``pad`` of ``pad_length`` is added."""
    attributes = {f"a{i}": {"value": "v" * 250, "modifiedAt": STAMP} for i in range(200)}
    padded = {**attributes, "pad": {"value": "p" * pad_length, "modifiedAt": STAMP}}
    filler_overhead = encoded_size({**padded, "fill": {"value": "", "modifiedAt": STAMP}})
    attributes["fill"] = {"value": "f" * (size_after_pad - filler_overhead), "modifiedAt": STAMP}
    assert encoded_size({**attributes, **padded}) == size_after_pad
    Profile.objects.create(client=client, pc_id="p-big", attributes=attributes)


def test_it_accepts_a_profile_of_64_kb_and_refuses_to_grow_it_past(demo: Client) -> None:
    http = HttpClient()
    profile_of_size(demo, MAX_PROFILE_ATTRIBUTES_BYTES, 200)
    response = http.get(f"{URL}?mboxPC=p-big&profile.pad={'p' * 200}")
    assert response.status_code == 200
    response = http.get(f"{URL}?mboxPC=p-big&profile.more=1")
    assert_bad_request(response, 413, "exceed")
    assert "more" not in stored(demo, "p-big")


# Input the framework cannot decode never ends in a 500


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"mboxPC": '),
        ("application/json", b"[1, 2]"),
        ("application/json", b'{"mboxPC": "x", "profile.city": {"nested": 1}}'),
        ("application/json", b'{"mboxPC": "x", "profile.city": true}'),
        ("application/json", b'{"a": ' + b"[" * 25_000 + b"]" * 25_000 + b"}"),
        ("application/json", b'{"mboxPC": "\xff"}'),
        (FORM, b"mboxPC=x&profile.city=\xff"),
        (FORM, b"mboxPC=x&profile.city=%FF"),
        ("multipart/form-data; boundary=nope", b"--broken"),
        ("text/plain", b"{not json"),
    ],
)
def test_it_answers_undecodable_bodies_with_400(
    http: HttpClient, content_type: str, body: bytes
) -> None:
    response = http.post(URL, data=body, content_type=content_type)
    assert response.status_code == 400
    assert xml_fields(response)["success"] == "false"


def test_it_answers_undecodable_queries_with_400(http: HttpClient) -> None:
    assert http.get(f"{URL}?mboxPC={PC_ID}&profile.city=%FF").status_code == 400
    assert http.get(f"{URL}?mboxPC=%00&profile.city=x").status_code == 400


def test_it_accepts_many_short_parameters_within_the_size_limit(
    http: HttpClient, demo: Client
) -> None:
    query = f"mboxPC={PC_ID}&profile.city=Paris&" + "&".join(f"x{i % 10}=" for i in range(1500))
    assert len(query) <= 8192
    assert http.get(f"{URL}?{query}").status_code == 200


# How public clients call it


def test_it_serves_the_public_client_request_shape(demo: Client) -> None:
    Profile.objects.create(
        client=demo, pc_id="1700000000000-000001.01_00", third_party_id="123-test"
    )
    require_authentication(demo)
    token = issue_token(demo)
    http = HttpClient()
    response = http.post(
        "/m2/demo/profile/update?mbox3rdPartyId=123-test"
        f"&profile.city={quote('New York City')}&profile.age=21",
        data=b"",
        content_type="",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 200
    assert xml_fields(response)["pcId"] == "1700000000000-000001.01_00"
    fetched = http.get(
        "/rest/v1/profiles/thirdPartyId/123-test?client=demo",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert fetched.status_code == 200
    attributes = fetched.json()["profileAttributes"]
    assert attributes["city"]["value"] == "New York City"
    assert attributes["age"]["value"] == "21"


@override_settings(ALLOWED_HOSTS=[".tt.omtrdc.net"])
def test_it_serves_the_placeholder_path_on_the_clients_host(demo: Client) -> None:
    Profile.objects.create(
        client=demo, pc_id="1700000000000-000001.01_00", third_party_id="123-test"
    )
    response = HttpClient().post(
        "/m2/client/profile/update?mbox3rdPartyId=123-test&profile.city=Oslo",
        data=b"",
        content_type="",
        HTTP_HOST="demo.tt.omtrdc.net",
    )
    assert xml_fields(response)["pcId"] == "1700000000000-000001.01_00"
    assert stored(demo, "1700000000000-000001.01_00") == {"city": "Oslo"}


def test_it_refuses_a_nul_character_in_a_value(http: HttpClient, demo: Client) -> None:
    body = json.dumps({"mboxPC": PC_ID, "profile.city": "a\u0000b"})
    response = http.post(URL, data=body, content_type="application/json")
    assert_bad_request(response, 400, "NUL")
    assert http.get(f"{URL}?mboxPC={PC_ID}&profile.city=a%00b").status_code == 400
    assert stored(demo)["city"] == "Lyon"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (
            {"mboxPC": PC_ID, "profile.city": "\ud800"},
            "value of 'city' is not valid UTF-8 text (it holds a lone surrogate)",
        ),
        (
            {"mboxPC": "p-\udfff", "profile.city": "Oslo"},
            "pcId is not valid UTF-8 text (it holds a lone surrogate)",
        ),
        (
            {"mboxPC": PC_ID, "profile.c\ud800": "Oslo"},
            "attribute name 'c\\ud800' is not valid UTF-8 text (it holds a lone surrogate)",
        ),
    ],
)
def test_it_refuses_a_lone_surrogate_in_a_json_body(
    http: HttpClient, demo: Client, body: dict[str, str], says: str
) -> None:
    response = http.post(URL, data=json.dumps(body), content_type="application/json")
    assert_bad_request(response, 400, says)
    assert stored(demo)["city"] == "Lyon"


def test_it_stores_each_json_number_exactly_as_it_was_written(
    http: HttpClient, demo: Client
) -> None:
    numbers = {
        "e": "1e2",
        "tenth": "0.10",
        "long": "12345678901234567890.5",
        "big": "123456789012345678901234567890",
        "negative": "-0.0",
        "capital": "2.5E-3",
        "whole": "21",
    }
    fields = ", ".join(f'"profile.{name}": {text}' for name, text in numbers.items())

    response = http.post(
        URL, data=f'{{"mboxPC": "{PC_ID}", {fields}}}', content_type="application/json"
    )

    assert response.status_code == 200, response.content
    assert stored(demo) == {"city": "Lyon", "tier": "gold", **numbers}


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_it_refuses_nan_and_infinity_which_are_not_json(
    http: HttpClient, demo: Client, constant: str
) -> None:
    body = f'{{"mboxPC": "{PC_ID}", "profile.city": {constant}}}'

    response = http.post(URL, data=body, content_type="application/json")

    assert_bad_request(response, 400, f"The body holds {constant}, which is not a JSON number.")
    assert stored(demo)["city"] == "Lyon"


def test_it_refuses_a_number_longer_than_a_value_may_be(http: HttpClient, demo: Client) -> None:
    body = f'{{"mboxPC": "{PC_ID}", "profile.city": {"9" * 5_000}}}'
    response = http.post(URL, data=body, content_type="application/json")
    assert_bad_request(response, 400, "value of 'city' is longer than 256 characters")
    assert stored(demo)["city"] == "Lyon"


def test_the_demo_seed_holds_the_profile_the_readme_examples_update(db: None) -> None:
    call_command("seed_demo", stdout=StringIO())
    response = HttpClient().get(
        f"{URL}?mbox3rdPartyId=123-test&profile.city=New%20York%20City&profile.age=21"
    )
    assert xml_fields(response)["pcId"] == "1368007744041-575948.01_00"
