"""Integration tokens through the management API (docs/management-api.md#integration-tokens):
the wire shapes scripts rely on, who may call, and what is refused."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client as HttpClient

from profiles.models import AuditEvent, Client, Integration, ProfileToken
from profiles.tokens import secret
from tests.integration_tokens import add_integration, bearer
from tests.profile_api import PC_ID, a_profile, require_authentication
from tests.support import basic
from tests.test_management_api import assert_error

TOKENS_URL = "/demo/target/authentication/tokens"
CRM_SYNC = {"name": "CRM sync", "permissions": ["fetch", "update", "batch"], "expiresInDays": 90}


def send(
    method: str, url: str, body: object = None, username: str = "alice", **headers: Any
) -> Any:
    data = json.dumps(body) if body is not None else ""
    return getattr(HttpClient(), method)(
        url, data, content_type="application/json", headers={**basic(username), **headers}
    )


def add(body: object = CRM_SYNC, username: str = "alice") -> Any:
    return send("post", TOKENS_URL, body, username)


def url_of(integration_id: object) -> str:
    return f"{TOKENS_URL}/{integration_id}"


# The wire shapes


def test_adding_answers_201_with_the_token_once(demo: Client, alice: User) -> None:
    response = add()

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "name", "permissions", "accessToken", "expiresAt"}
    assert body["name"] == "CRM sync"
    assert body["permissions"] == ["fetch", "update", "batch"]
    assert secret.is_well_formed(body["accessToken"])
    integration = Integration.objects.get(pk=body["id"])
    stored = ProfileToken.objects.get(integration=integration)
    assert stored.digest == secret.digest(body["accessToken"])
    assert stored.expires_at.isoformat() == body["expiresAt"]


def test_the_token_added_opens_the_calls_its_permissions_name(demo: Client, alice: User) -> None:
    a_profile(demo, city="Lyon")
    require_authentication(demo)
    plaintext = add({"name": "reader", "permissions": ["fetch"]}).json()["accessToken"]
    http = HttpClient()

    fetched = http.get(f"/rest/v1/profiles/{PC_ID}?client=demo", **bearer(plaintext))
    updated = http.get(f"/m2/demo/profile/update?mboxPC={PC_ID}&profile.a=1", **bearer(plaintext))

    assert fetched.status_code == 200
    assert updated.status_code == 403


def test_the_list_holds_no_secret_and_says_when_each_was_last_used(
    demo: Client, alice: User
) -> None:
    a_profile(demo, city="Lyon")
    require_authentication(demo)
    plaintext = add().json()["accessToken"]
    HttpClient(REMOTE_ADDR="198.51.100.4").get(
        f"/rest/v1/profiles/{PC_ID}?client=demo", **bearer(plaintext)
    )
    add({"name": "web tier", "permissions": ["fetch"]})

    response = send("get", TOKENS_URL)

    assert response.status_code == 200
    listed = response.json()["tokens"]
    assert [entry["name"] for entry in listed] == ["CRM sync", "web tier"]
    assert set(listed[0]) == {
        "id",
        "name",
        "permissions",
        "createdAt",
        "lastFour",
        "expiresAt",
        "lastUsedAt",
        "lastUsedFrom",
    }
    assert listed[0]["lastFour"] == plaintext[-4:]
    assert listed[0]["lastUsedFrom"] == "198.51.100.4"
    assert listed[0]["lastUsedAt"] is not None
    assert listed[1]["lastUsedAt"] is None
    assert plaintext not in response.content.decode()
    assert ProfileToken.objects.get(integration_id=listed[0]["id"]).digest not in (
        response.content.decode()
    )


def test_show_answers_one_token_as_the_list_does(demo: Client, alice: User) -> None:
    created = add().json()

    shown = send("get", url_of(created["id"])).json()

    assert shown == send("get", TOKENS_URL).json()["tokens"][0]


def test_patch_renames_and_changes_permissions(demo: Client, alice: User) -> None:
    created = add().json()

    response = send("patch", url_of(created["id"]), {"name": "web", "permissions": ["batch"]})

    assert response.status_code == 200
    assert (response.json()["name"], response.json()["permissions"]) == ("web", ["batch"])
    assert AuditEvent.objects.filter(
        client=demo, action=AuditEvent.Action.INTEGRATION_CHANGED
    ).exists()


def test_delete_answers_204_and_revokes_only_that_token(demo: Client, alice: User) -> None:
    a_profile(demo, city="Lyon")
    require_authentication(demo)
    crm = add().json()
    web = add({"name": "web tier", "permissions": ["fetch"]}).json()

    response = send("delete", url_of(crm["id"]))

    assert response.status_code == 204
    assert response.content == b""
    fetch = f"/rest/v1/profiles/{PC_ID}?client=demo"
    assert HttpClient().get(fetch, **bearer(crm["accessToken"])).status_code == 401
    assert HttpClient().get(fetch, **bearer(web["accessToken"])).status_code == 200
    assert [entry["name"] for entry in send("get", TOKENS_URL).json()["tokens"]] == ["web tier"]
    assert send("get", url_of(crm["id"])).status_code == 404


def test_regenerate_answers_a_new_token_and_ends_the_old_one(demo: Client, alice: User) -> None:
    created = add().json()

    response = send("post", f"{url_of(created['id'])}/regenerate", {"expiresInDays": 30})

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "name", "permissions", "accessToken", "expiresAt"}
    assert body["id"] == created["id"]
    assert body["accessToken"] != created["accessToken"]
    old = ProfileToken.objects.get(digest=secret.digest(created["accessToken"]))
    assert old.revoked_at is not None


def test_regenerate_with_a_grace_period_says_until_when_the_old_one_works(
    demo: Client, alice: User
) -> None:
    created = add().json()

    body = send(
        "post", f"{url_of(created['id'])}/regenerate", {"previousTokenGraceSeconds": 3600}
    ).json()

    old = ProfileToken.objects.get(digest=secret.digest(created["accessToken"]))
    assert old.revoked_at is None
    assert body["previousTokenValidUntil"] == old.valid_until.isoformat()
    listed = send("get", url_of(created["id"])).json()
    assert listed["previousToken"]["lastFour"] == created["accessToken"][-4:]


def test_regenerate_takes_no_body_as_the_defaults(demo: Client, alice: User) -> None:
    created = add().json()

    response = HttpClient().post(f"{url_of(created['id'])}/regenerate", headers=basic("alice"))

    assert response.status_code == 201


# Who may call


@pytest.mark.parametrize("username", ["bob", "peggy", "oscar", "charlie"])
def test_only_an_approver_of_the_client_manages_its_tokens(
    demo: Client, alice: User, bob: User, peggy: User, oscar: User, charlie: User, username: str
) -> None:
    crm, _ = add_integration(demo)

    for method, url, body in [
        ("get", TOKENS_URL, None),
        ("post", TOKENS_URL, CRM_SYNC),
        ("get", url_of(crm.pk), None),
        ("patch", url_of(crm.pk), {"name": "x"}),
        ("delete", url_of(crm.pk), None),
        ("post", f"{url_of(crm.pk)}/regenerate", {}),
    ]:
        assert_error(send(method, url, body, username), 403, "Access.Denied")

    crm.refresh_from_db()
    assert (crm.name, crm.revoked_at) == ("CRM sync", None)
    assert ProfileToken.objects.filter(integration=crm).count() == 1


def test_no_client_reaches_another_clients_tokens(
    demo: Client, other_client: Client, alice: User, charlie: User
) -> None:
    theirs, _ = add_integration(other_client, name="acme sync")

    listed = send("get", TOKENS_URL).json()["tokens"]
    shown = send("get", url_of(theirs.pk))
    changed = send("patch", url_of(theirs.pk), {"name": "mine now"})
    revoked = send("delete", url_of(theirs.pk))
    regenerated = send("post", f"{url_of(theirs.pk)}/regenerate", {})

    assert listed == []
    for response in (shown, changed, revoked, regenerated):
        assert_error(response, 404, "Token.NotFound")
    theirs.refresh_from_db()
    assert (theirs.name, theirs.revoked_at) == ("acme sync", None)
    assert ProfileToken.objects.filter(integration=theirs).count() == 1


# What is refused


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"permissions": ["fetch"]}, "name: This field is required."),
        ({"name": "x"}, "permissions: This field is required."),
        ({**CRM_SYNC, "name": ""}, "name: must not be empty."),
        ({**CRM_SYNC, "name": "x" * 65}, "name: must be at most 64 characters."),
        ({**CRM_SYNC, "name": 7}, "name: must be text."),
        ({**CRM_SYNC, "permissions": []}, "permissions: give at least one permission"),
        ({**CRM_SYNC, "permissions": ["delete"]}, "permissions: each permission must be one of"),
        ({**CRM_SYNC, "permissions": "fetch"}, "permissions: must be a list of one or more"),
        ({**CRM_SYNC, "expiresInDays": 2}, "expiresInDays: must be one of"),
        ({**CRM_SYNC, "expiresInDays": "90"}, "expiresInDays: Enter a whole number."),
        ({**CRM_SYNC, "scope": "all"}, "Unknown field(s): scope."),
    ],
)
def test_a_bad_body_is_refused_naming_the_field(
    demo: Client, alice: User, body: dict[str, Any], problem: str
) -> None:
    response = add(body)

    error = assert_error(response, 400, "Parameter.Invalid")
    assert problem in error["message"]
    assert not Integration.objects.exists()


def test_a_name_already_used_is_refused(demo: Client, alice: User) -> None:
    add()

    error = assert_error(add(), 400, "Parameter.Invalid")

    assert "already has an integration token named 'CRM sync'" in error["message"]


def test_a_twenty_first_token_is_refused_with_409(demo: Client, alice: User) -> None:
    for number in range(20):
        add_integration(demo, name=f"integration {number}")

    assert_error(add(), 409, "Token.LimitReached")


def test_a_patch_without_a_field_is_refused(demo: Client, alice: User) -> None:
    crm, _ = add_integration(demo)

    error = assert_error(send("patch", url_of(crm.pk), {}), 400, "Parameter.Invalid")

    assert "Send at least one of name, permissions." in error["message"]


@pytest.mark.parametrize("token_id", ["999", "abc", "²", "9" * 30, "-1"])
def test_an_id_no_token_has_is_404(demo: Client, alice: User, token_id: str) -> None:
    assert_error(send("get", url_of(token_id)), 404, "Token.NotFound")


def test_the_token_never_reaches_a_log(
    demo: Client, alice: User, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        plaintext = add().json()["accessToken"]

    assert plaintext not in caplog.text
