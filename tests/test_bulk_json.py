"""The JSON bulk endpoint (docs/api.md#json-bulk-update), its status endpoint, and the OpenAPI document."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from django.urls import resolve

from profiles import tasks
from profiles.ingest import processing
from profiles.ingest.batches import Batch, BatchFailure
from profiles.ingest.pipeline import Row, apply_chunk
from profiles.models import Client, Profile
from profiles.store import KeyKind
from tests.batches import values
from tests.profile_api import issue_token, require_authentication

BULK = "/api/v1/clients/demo/profiles/bulk"
DUMMY_TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}


def post(http: HttpClient, document: Any, path: str = BULK, **headers: Any) -> HttpResponse:
    return http.post(path, data=json.dumps(document), content_type="application/json", **headers)


def error_of(response: HttpResponse) -> dict[str, str]:
    document = json.loads(response.content)
    assert set(document) == {"error"}
    return dict(document["error"])


def test_it_applies_a_small_batch_inside_the_request(demo: Client, client: HttpClient) -> None:
    Profile.objects.create(client=demo, pc_id="1368007744041-575948.01_00")
    response = post(
        client,
        {
            "createMissing": True,
            "profiles": [
                {"thirdPartyId": "u-1", "attributes": {"tier": "gold"}},
                {"pcId": "1368007744041-575948.01_00", "attributes": {"seen": "3"}},
                {"thirdPartyId": "bad/id", "attributes": {"tier": "x"}},
            ],
        },
    )
    assert response.status_code == 200
    document = response.json()
    batch_id = document.pop("batchId")
    assert re.fullmatch(r"demo-\d{13}-\d{8}", batch_id)
    assert document == {
        "status": "complete",
        "batchSize": 3,
        "consumedCount": 3,
        "successfulUpdates": 2,
        "profilesNotFound": 0,
        "failedUpdates": 1,
        "failures": [
            {
                "index": 2,
                "id": "bad/id",
                "code": "bad_id",
                "message": "thirdPartyId must not contain '+' or '/'",
            }
        ],
        "statusUrl": f"http://testserver/api/v1/clients/demo/batches/{batch_id}",
    }
    assert values(demo, third_party_id="u-1") == {"tier": "gold"}
    assert values(demo, pc_id="1368007744041-575948.01_00") == {"seen": "3"}


def test_it_updates_only_existing_profiles_unless_asked_to_create(
    demo: Client, client: HttpClient
) -> None:
    document = post(client, {"profiles": [{"thirdPartyId": "nobody", "attributes": {"a": "1"}}]})
    assert document.json()["profilesNotFound"] == 1
    assert not Profile.objects.exists()


@pytest.mark.parametrize(
    ("create_missing", "counts"), [(False, (1, 2)), (True, (3, 0))], ids=["update", "create"]
)
def test_it_counts_a_profile_of_only_empty_values_not_found_unless_asked_to_create(
    demo: Client, client: HttpClient, create_missing: bool, counts: tuple[int, int]
) -> None:
    Profile.objects.create(client=demo, third_party_id="known", pc_id="k", attributes={})
    profiles = [
        {"thirdPartyId": "known", "attributes": {"a": ""}},
        {"thirdPartyId": "nobody", "attributes": {"a": ""}},
        {"thirdPartyId": "nobody-else"},
    ]
    document = post(client, {"createMissing": create_missing, "profiles": profiles}).json()
    assert (document["successfulUpdates"], document["profilesNotFound"]) == counts
    assert list(Profile.objects.values_list("third_party_id", "attributes")) == [("known", {})]


def test_it_looks_up_a_chunks_rows_of_only_empty_values_in_one_query(demo: Client) -> None:
    Profile.objects.create(client=demo, pc_id="p0", attributes={})
    rows = [Row(n, f"p{n}", {"a": ""}) for n in range(50)]
    with CaptureQueriesContext(connection) as queries:
        outcome = apply_chunk(demo.pk, KeyKind.PC_ID, rows, create_missing=False)
    assert (outcome.successful, outcome.not_found) == (1, 49)
    assert len(queries) == 1


def test_it_records_malformed_profiles_by_index(demo: Client, client: HttpClient) -> None:
    profiles: list[Any] = [
        "not an object",
        {"attributes": {"a": "1"}},
        {"pcId": "p", "thirdPartyId": "t"},
        {"pcId": 7},
        {"pcId": "p", "attributes": ["a"]},
        {"pcId": "p", "attributes": {"a": 1}},
        {"pcId": "p", "attributes": {"a": "v" * 257}},
        {"pcId": "p", "attributes": {"profile.a": "1"}},
    ]
    failures = post(client, {"createMissing": True, "profiles": profiles}).json()["failures"]
    assert [(f["index"], f["code"]) for f in failures] == [
        (0, "bad_profile"),
        (1, "bad_profile"),
        (2, "bad_profile"),
        (3, "bad_id"),
        (4, "bad_profile"),
        (5, "bad_value"),
        (6, "value_too_long"),
        (7, "bad_attribute_name"),
    ]
    assert not Profile.objects.exists()


def test_it_records_a_failed_id_holding_nul_on_every_database(
    demo: Client, client: HttpClient
) -> None:
    """PostgreSQL cannot store NUL: the failed row is kept with U+FFFD in its place."""
    profiles = [{"pcId": "a\x00b", "attributes": {"a": "1"}}]
    response = post(client, {"createMissing": True, "profiles": profiles})
    assert response.status_code == 200
    assert [(f["index"], f["code"]) for f in response.json()["failures"]] == [(0, "bad_id")]
    assert BatchFailure.objects.get().profile_id == "a\ufffdb"


@pytest.mark.parametrize("applied_by", ["request", "worker"])
def test_it_fails_only_the_profiles_holding_a_lone_surrogate(
    demo: Client, client: HttpClient, settings: Any, applied_by: str
) -> None:
    """JSON can spell a lone surrogate ("\\ud800"), which is not text: the row fails alone."""
    if applied_by == "worker":
        settings.JSON_BULK_INLINE_PROFILES = 1
    profiles = [
        {"thirdPartyId": "u-1", "attributes": {"tier": "gold"}},
        {"thirdPartyId": "u-\ud800", "attributes": {"tier": "gold"}},
        {"thirdPartyId": "u-3", "attributes": {"tier": "\ud800"}},
        {"thirdPartyId": "u-4", "attributes": {"t\udfff": "gold"}},
    ]
    response = post(client, {"createMissing": True, "profiles": profiles})
    assert response.status_code == 200
    summary = response.json()
    assert (summary["status"], summary["successfulUpdates"]) == ("complete", 1)
    assert [(f["index"], f["id"], f["code"], f["message"]) for f in summary["failures"]] == [
        (
            1,
            "u-\ufffd",
            "bad_id",
            "thirdPartyId is not valid UTF-8 text (it holds a lone surrogate)",
        ),
        (
            2,
            "u-3",
            "bad_value",
            "value of 'tier' is not valid UTF-8 text (it holds a lone surrogate)",
        ),
        (
            3,
            "u-4",
            "bad_attribute_name",
            "attribute name 't\\udfff' is not valid UTF-8 text (it holds a lone surrogate)",
        ),
    ]
    assert values(demo, third_party_id="u-1") == {"tier": "gold"}
    assert Profile.objects.count() == 1


def test_it_refuses_a_number_too_long_to_read_and_keeps_the_key_free(
    demo: Client, client: HttpClient
) -> None:
    body = b'{"profiles": [], "n": ' + b"1" * 5_000 + b"}"
    response = client.post(
        BULK, data=body, content_type="application/json", headers={"Idempotency-Key": "k"}
    )
    assert response.status_code == 400
    assert error_of(response) == {
        "code": "bad_json",
        "message": "The body holds a number of more than 4,300 digits.",
    }
    assert not Batch.objects.exists()
    assert post(client, {"profiles": []}, headers={"Idempotency-Key": "k"}).status_code == 200


def test_it_leaves_no_batch_and_frees_the_key_when_applying_a_small_batch_fails(
    demo: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small batch is created and applied in one transaction: all of it, or nothing."""
    document = {
        "createMissing": True,
        "profiles": [{"thirdPartyId": "u-1", "attributes": {"a": "1"}}],
    }

    def broken(batch: Batch, chunk: processing.Chunk) -> None:
        raise RuntimeError("the store failed")

    monkeypatch.setattr(processing, "apply", broken)
    http = HttpClient(raise_request_exception=False)
    assert post(http, document, headers={"Idempotency-Key": "k"}).status_code == 500
    assert not Batch.objects.exists()
    monkeypatch.undo()

    retried = post(http, document, headers={"Idempotency-Key": "k"})
    assert (retried.status_code, retried.json()["status"]) == (200, "complete")
    assert values(demo, third_party_id="u-1") == {"a": "1"}


def test_it_hands_a_large_batch_to_the_worker_and_answers_202(
    demo: Client, client: HttpClient, settings: Any
) -> None:
    settings.TASKS = DUMMY_TASKS
    profiles = [{"thirdPartyId": f"u-{n}", "attributes": {"n": str(n)}} for n in range(1001)]
    response = post(client, {"createMissing": True, "profiles": profiles})
    assert response.status_code == 202
    document = response.json()
    assert (document["status"], document["batchSize"], document["consumedCount"]) == (
        "incomplete",
        1001,
        0,
    )
    assert not Profile.objects.exists()
    tasks.process_batch.call(document["batchId"])  # what the worker does
    status = client.get(document["statusUrl"])
    assert status.status_code == 200
    assert status.json()["status"] == "complete"
    assert status.json()["successfulUpdates"] == 1001
    assert values(demo, third_party_id="u-1000") == {"n": "1000"}
    assert not Batch.objects.get().has_file  # the stored rows go once applied


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "message"),
    [
        (b"{", "application/json", 400, "bad_json", "The body is not valid JSON"),
        (b"[]", "application/json", 400, "bad_json", "The body must be a JSON object."),
        (b"{}", "application/json", 400, "invalid", "'profiles' must be a list of profiles."),
        (
            b'{"profiles": [], "createMissing": "yes"}',
            "application/json",
            400,
            "invalid",
            "'createMissing' must be true or false.",
        ),
        (
            b'{"profiles": []}',
            "text/plain",
            415,
            "unsupported_media_type",
            "Send the profiles as Content-Type: application/json.",
        ),
    ],
)
def test_it_refuses_bad_requests_in_the_json_error_envelope(
    demo: Client,
    client: HttpClient,
    body: bytes,
    content_type: str,
    status: int,
    code: str,
    message: str,
) -> None:
    response = client.post(BULK, data=body, content_type=content_type)
    assert response.status_code == status
    error = error_of(response)
    assert error["code"] == code
    assert error["message"].startswith(message)
    assert not Batch.objects.exists()


def test_it_refuses_bodies_over_the_limit_with_413(
    demo: Client, client: HttpClient, settings: Any
) -> None:
    settings.JSON_BULK_MAX_BYTES = 100
    response = post(client, {"profiles": [{"pcId": "p" * 100}]})
    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"


def test_it_refuses_more_profiles_than_the_row_limit(
    demo: Client, client: HttpClient, settings: Any
) -> None:
    settings.BATCH_MAX_ROWS = 2
    response = post(client, {"profiles": [{"pcId": "a"}, {"pcId": "b"}, {"pcId": "c"}]})
    assert response.status_code == 413
    assert error_of(response)["message"] == "A batch holds at most 2 profiles."


def test_it_answers_unknown_clients_and_missing_tokens_in_the_json_envelope(
    demo: Client, client: HttpClient
) -> None:
    unknown = post(client, {"profiles": []}, path="/api/v1/clients/nobody/profiles/bulk")
    # Refused as a client requiring a token, so codes cannot be enumerated (docs/api.md#authentication).
    assert unknown.status_code == 401
    assert unknown["WWW-Authenticate"] == "Bearer"
    assert error_of(unknown)["code"] == "unauthorized"
    require_authentication(demo)
    refused = post(client, {"profiles": []})
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"] == "Bearer"
    assert error_of(refused)["code"] == "unauthorized"
    token = issue_token(demo)
    accepted = post(client, {"profiles": []}, headers={"authorization": f"Bearer {token}"})
    assert accepted.status_code == 200


def test_it_answers_404_for_another_clients_batch(
    demo: Client, other_client: Client, client: HttpClient
) -> None:
    path = "/api/v1/clients/acme/profiles/bulk"
    batch_id = post(client, {"profiles": []}, path=path).json()["batchId"]
    response = client.get(f"/api/v1/clients/demo/batches/{batch_id}")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


# The OpenAPI document -------------------------------------------------------------------


def openapi(http: HttpClient) -> dict[str, Any]:
    response = http.get("/api/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "boolean": bool,
}


def conforms(document: dict[str, Any], schema: dict[str, Any], value: Any, where: str) -> None:
    """Check ``value`` against the JSON Schema keywords the document uses."""
    schema = _resolve(document, schema)
    expected = schema.get("type")
    if expected:
        assert isinstance(value, _TYPES[expected]), f"{where}: {value!r} is not {expected}"
        assert expected in ("integer", "boolean") or not isinstance(value, bool)
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if "pattern" in schema:
        assert re.search(schema["pattern"], value), f"{where}: {value!r} !~ {schema['pattern']}"
    if "minimum" in schema:
        assert value >= schema["minimum"], where
    if isinstance(value, dict):
        missing = set(schema.get("required", ())) - set(value)
        assert not missing, f"{where}: missing {missing}"
        properties = schema.get("properties", {})
        undocumented = set(value) - set(properties)
        assert not undocumented, f"{where}: undocumented {undocumented}"
        for name, item in value.items():
            conforms(document, properties[name], item, f"{where}.{name}")
    if isinstance(value, list):
        for number, item in enumerate(value):
            conforms(document, schema["items"], item, f"{where}[{number}]")


def documented_response(
    document: dict[str, Any], path: str, method: str, response: HttpResponse
) -> None:
    operation = document["paths"][path][method]
    answers = operation["responses"]
    assert str(response.status_code) in answers, f"{response.status_code} undocumented"
    described = _resolve(document, answers[str(response.status_code)])
    schema = described["content"]["application/json"]["schema"]
    conforms(document, schema, response.json(), f"{method} {path} {response.status_code}")
    for header in described.get("headers", {}):
        assert response.has_header(header)


def test_it_serves_an_openapi_31_document_whose_paths_exist(client: HttpClient) -> None:
    document = openapi(client)
    assert document["openapi"] == "3.1.0"
    examples = {
        "client": "demo",
        "batchId": "demo-1-00000001",
        "pcId": "p1",
        "thirdPartyId": "u1",
        "tokenId": "1",
    }
    for path, operations in document["paths"].items():
        match = resolve(path.format(**examples))
        assert match.url_name in (
            "bulk",
            "bulk_batch",
            "profile_fetch",
            "profile_fetch_by_third_party_id",
            "token",
            "previous_token",
            "integration_tokens",
            "integration_token",
            "integration_token_regeneration",
            "token_usage",
            "integration_token_usage",
            "settings",
        )
        for method in set(operations) - {"parameters"}:
            assert method in ("get", "post", "patch", "delete")


def test_it_answers_the_way_the_openapi_document_says(
    demo: Client, client: HttpClient, settings: Any
) -> None:
    document = openapi(client)
    bulk_path = "/api/v1/clients/{client}/profiles/bulk"
    batch_path = "/api/v1/clients/{client}/batches/{batchId}"
    small = post(
        client,
        {"createMissing": True, "profiles": [{"thirdPartyId": "u"}, {"pcId": "x/" * 200}]},
    )
    documented_response(document, bulk_path, "post", small)
    documented_response(document, batch_path, "get", client.get(small.json()["statusUrl"]))
    for bad in (b"{", b'{"profiles": 1}'):
        response = client.post(BULK, data=bad, content_type="application/json")
        documented_response(document, bulk_path, "post", response)
    documented_response(
        document, bulk_path, "post", client.post(BULK, data=b"{}", content_type="text/plain")
    )
    documented_response(document, batch_path, "get", client.get("/api/v1/clients/demo/batches/x"))
    documented_response(document, bulk_path, "post", client.get(BULK))
    settings.TASKS = DUMMY_TASKS
    large = post(client, {"profiles": [{"pcId": str(n)} for n in range(1001)]})
    documented_response(document, bulk_path, "post", large)
    settings.BULK_SUBMISSIONS_PER_MINUTE = 1
    documented_response(document, bulk_path, "post", post(client, {"profiles": []}))
