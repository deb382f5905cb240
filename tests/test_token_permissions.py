"""The gate enforces an integration token's permissions on every profile API endpoint, in
that endpoint's envelope (docs/tokens.md#permissions)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import pytest
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext

from profiles.access.actors import SYSTEM
from profiles.models import Client, ProfileToken
from tests.batches import FORM, batch_id_of
from tests.integration_tokens import add_integration, bearer
from tests.profile_api import PC_ID, THIRD_PARTY_ID, a_profile, issue, require_authentication

# Through Django's test client and through the fast lane in front of it.
pytestmark = pytest.mark.usefixtures("both_doors")

BATCH_FILE = f"batch=thirdPartyId,city\n{THIRD_PARTY_ID},Paris\n"
BULK_DOCUMENT = json.dumps({"profiles": [{"thirdPartyId": THIRD_PARTY_ID, "attributes": {}}]})


@dataclass(frozen=True)
class Call:
    """One profile API endpoint, the permission it needs and the envelope it answers in."""

    name: str
    needs: str
    envelope: str  # "xml", "rest" or "json"
    method: str
    path: str
    body: str = ""
    content_type: str = FORM

    def send(self, http: HttpClient, batch_id: str, **headers: str) -> object:
        path = self.path.format(batch=batch_id)
        if self.method == "POST":
            return http.post(path, data=self.body, content_type=self.content_type, **headers)
        return http.get(path, **headers)


CALLS = [
    Call(
        "update GET", "update", "xml", "GET", f"/m2/demo/profile/update?mboxPC={PC_ID}&profile.a=1"
    ),
    Call(
        "update POST",
        "update",
        "xml",
        "POST",
        f"/m2/demo/profile/update?mboxPC={PC_ID}&profile.a=1",
    ),
    Call("fetch by pcId", "fetch", "rest", "GET", f"/rest/v1/profiles/{PC_ID}?client=demo"),
    Call(
        "fetch by thirdPartyId",
        "fetch",
        "rest",
        "GET",
        f"/rest/v1/profiles/thirdPartyId/{THIRD_PARTY_ID}?client=demo",
    ),
    Call("batch file v1", "batch", "xml", "POST", "/m2/demo/profile/batchUpdate", BATCH_FILE),
    Call("batch file v2", "batch", "xml", "POST", "/m2/demo/v2/profile/batchUpdate", BATCH_FILE),
    Call("batch status", "batch", "xml", "GET", "/m2/demo/profile/batchStatus?batchId={batch}"),
    Call(
        "batch status v2", "batch", "xml", "GET", "/m2/demo/v2/profile/batchStatus?batchId={batch}"
    ),
    Call(
        "JSON bulk",
        "batch",
        "json",
        "POST",
        "/api/v1/clients/demo/profiles/bulk",
        BULK_DOCUMENT,
        "application/json",
    ),
    Call("JSON bulk status", "batch", "json", "GET", "/api/v1/clients/demo/batches/{batch}"),
]
PERMISSIONS = ("fetch", "update", "batch")


@pytest.fixture
def batch_id(demo: Client) -> str:
    """A batch of demo's, submitted with demo's own token, with a profile to update and
    fetch."""
    a_profile(demo, city="Lyon")
    require_authentication(demo)
    _, own = issue(demo)
    http = HttpClient()
    return batch_id_of(
        http.post("/m2/demo/profile/batchUpdate", data=BATCH_FILE, content_type=FORM, **bearer(own))
    )


def refusal_of(response: object, envelope: str) -> tuple[int, str, str]:
    """The status, the code (where the envelope has one) and the message of a refusal."""
    status = response.status_code  # type: ignore[attr-defined]
    content = response.content  # type: ignore[attr-defined]
    if envelope == "xml":
        assert response["Content-Type"].startswith("application/xml")  # type: ignore[index]
        assert b"<success>false</success>" in content
        message = content.split(b"<message>")[1].split(b"</message>")[0].decode()
        return status, "", message
    document = json.loads(content)
    if envelope == "rest":
        assert document["status"] == status
        return status, "", document["message"]
    return status, document["error"]["code"], document["error"]["message"]


@pytest.mark.parametrize("granted", PERMISSIONS)
@pytest.mark.parametrize("call", CALLS, ids=lambda call: call.name)
def test_a_token_opens_exactly_the_endpoints_its_permission_covers(
    demo: Client, batch_id: str, call: Call, granted: str
) -> None:
    _, plaintext = add_integration(demo, granted)

    response = call.send(HttpClient(), batch_id, **bearer(plaintext))

    if granted == call.needs:
        assert 200 <= response.status_code < 300, response.content  # type: ignore[attr-defined]
    else:
        status, code, message = refusal_of(response, call.envelope)
        assert status == 403
        assert code in ("", "token_scope")
        if call.envelope == "json":
            assert code == "token_scope"
        assert f"'{call.needs}' permission" in message


@pytest.mark.parametrize("call", CALLS, ids=lambda call: call.name)
def test_a_token_with_every_permission_opens_every_endpoint(
    demo: Client, batch_id: str, call: Call
) -> None:
    _, plaintext = add_integration(demo, "fetch", "update", "batch")

    response = call.send(HttpClient(), batch_id, **bearer(plaintext))

    assert 200 <= response.status_code < 300, response.content  # type: ignore[attr-defined]


@pytest.mark.parametrize("call", CALLS, ids=lambda call: call.name)
def test_the_clients_own_token_keeps_every_permission(
    demo: Client, batch_id: str, call: Call
) -> None:
    add_integration(demo, "fetch")  # integrations beside it change nothing
    _, own = issue(demo)

    response = call.send(HttpClient(), batch_id, **bearer(own))

    assert 200 <= response.status_code < 300, response.content  # type: ignore[attr-defined]


def test_a_refusal_for_scope_is_logged_with_the_last_four_only(
    demo: Client, batch_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    _, plaintext = add_integration(demo, "fetch")

    with caplog.at_level(logging.WARNING, logger="profiles.api.gate"):
        HttpClient().get(f"/m2/demo/profile/update?mboxPC={PC_ID}&profile.a=1", **bearer(plaintext))

    assert f"reason=needs update token=…{plaintext[-4:]}" in caplog.text
    assert plaintext not in caplog.text


def test_a_refusal_for_scope_records_no_use(demo: Client, batch_id: str) -> None:
    integration, plaintext = add_integration(demo, "fetch")

    HttpClient().get(f"/m2/demo/profile/update?mboxPC={PC_ID}&profile.a=1", **bearer(plaintext))

    assert ProfileToken.objects.get(integration=integration).last_used_at is None


def test_a_refusal_for_scope_is_not_counted_by_the_throttle(
    demo: Client, batch_id: str, settings: object
) -> None:
    settings.PROFILE_API_AUTH_FAILURE_LIMIT = 2  # type: ignore[attr-defined]
    _, plaintext = add_integration(demo, "fetch")
    update = f"/m2/demo/profile/update?mboxPC={PC_ID}&profile.a=1"
    http = HttpClient()

    statuses = [http.get(update, **bearer(plaintext)).status_code for _ in range(4)]

    assert statuses == [403] * 4


def test_another_token_presented_with_the_permission_opens_the_call(
    demo: Client, batch_id: str
) -> None:
    _, fetch_only = add_integration(demo, "fetch", name="reader")
    _, updater = add_integration(demo, "update", name="writer")

    response = HttpClient().get(
        f"/m2/demo/profile/update?mboxPC={PC_ID}&profile.a=1",
        HTTP_AUTHORIZATION=f"Bearer {fetch_only}",
        HTTP_ACCESS_TOKEN=updater,
    )

    assert response.status_code == 200


def test_another_clients_integration_token_is_invalid_not_out_of_scope(
    demo: Client, other_client: Client, batch_id: str
) -> None:
    _, theirs = add_integration(other_client, "fetch", "update", "batch")

    response = HttpClient().get(f"/rest/v1/profiles/{PC_ID}?client=demo", **bearer(theirs))

    assert response.status_code == 401


def test_a_revoked_integrations_token_is_invalid(demo: Client, batch_id: str) -> None:
    integration, plaintext = add_integration(demo, "fetch")
    ProfileToken.objects.revoke_integration(integration, actor=SYSTEM)

    response = HttpClient().get(f"/rest/v1/profiles/{PC_ID}?client=demo", **bearer(plaintext))

    assert response.status_code == 401


def test_new_permissions_apply_from_the_next_call(demo: Client, batch_id: str) -> None:
    integration, plaintext = add_integration(demo, "fetch")
    fetch = f"/rest/v1/profiles/{PC_ID}?client=demo"
    assert HttpClient().get(fetch, **bearer(plaintext)).status_code == 200

    integration.change(actor=SYSTEM, granted=2)  # update only

    assert HttpClient().get(fetch, **bearer(plaintext)).status_code == 403


def test_without_required_authentication_every_call_passes_whatever_the_token(
    demo: Client, batch_id: str
) -> None:
    require_authentication(demo, enabled=False)
    _, fetch_only = add_integration(demo, "fetch")

    response = HttpClient().get(
        f"/m2/demo/profile/update?mboxPC={PC_ID}&profile.a=1", **bearer(fetch_only)
    )

    assert response.status_code == 200


def test_the_permission_check_costs_no_query_of_its_own(demo: Client, batch_id: str) -> None:
    _, own = issue(demo)
    _, fetch_only = add_integration(demo, "fetch")
    fetch = f"/rest/v1/profiles/{PC_ID}?client=demo"
    http = HttpClient()
    http.get(fetch, **bearer(own))  # last use recorded: not counted below
    http.get(fetch, **bearer(fetch_only))

    with CaptureQueriesContext(connection) as by_own:
        assert http.get(fetch, **bearer(own)).status_code == 200
    with CaptureQueriesContext(connection) as by_integration:
        assert http.get(fetch, **bearer(fetch_only)).status_code == 200

    assert len(by_integration) == len(by_own)
