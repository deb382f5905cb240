"""docs/tokens.md#retrievable-tokens: a client may allow its token to be retrieved again; the
token is then also kept encrypted, answered as Adobe's ``accessToken`` and revealed on the
card, every retrieval audited, and turning the option off erases every kept copy."""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext

from profiles.access.actors import SYSTEM, Actor
from profiles.access.models import AuditEvent
from profiles.models import Client, ProfileApiSettings, ProfileToken
from profiles.rules.errors import ErrorCode, ProductError
from profiles.tokens import sealing, secret, verification
from profiles.tokens.checks import (
    MISSING_KEY_ERROR,
    MISSING_KEY_WARNING,
    token_encryption_keys,
)
from tests.profile_api import PC_ID, a_profile, issue_token, require_authentication
from tests.support import basic, signed_in

TOKEN_URL = "/demo/target/authentication/token"
SETTINGS_URL = "/demo/target/clients/settings"
PAGE = "/setup/demo/implementation/"
ROOT = Path(__file__).resolve().parent.parent


def allow_retrieval(client: Client, enabled: bool = True) -> None:
    ProfileApiSettings.for_client(client).set_token_retrievable(enabled, actor=SYSTEM)


def kept(client: Client) -> list[str | None]:
    return list(ProfileToken.objects.filter(client=client).values_list("ciphertext", flat=True))


def describe(username: str = "alice", code: str = "demo") -> Any:
    return HttpClient().get(f"/{code}/target/authentication/token", headers=basic(username))


def patch_settings(body: object, username: str = "alice") -> Any:
    return HttpClient().patch(
        SETTINGS_URL, json.dumps(body), content_type="application/json", headers=basic(username)
    )


def retrievals() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditEvent.Action.TOKEN_RETRIEVED))


# Keeping the copy


def test_it_keeps_no_copy_by_default(demo: Client) -> None:
    issue_token(demo)

    assert ProfileApiSettings.for_client(demo).token_retrievable is False
    assert kept(demo) == [None]


def test_it_keeps_an_encrypted_copy_of_each_new_token_while_allowed(demo: Client) -> None:
    allow_retrieval(demo)
    plaintext = issue_token(demo)

    (ciphertext,) = kept(demo)
    assert ciphertext is not None
    assert plaintext[4:] not in ciphertext
    assert sealing.unseal(ciphertext) == plaintext
    assert ProfileToken.objects.get().digest == secret.digest(plaintext)


def test_the_gate_still_checks_the_digest_only(demo: Client) -> None:
    allow_retrieval(demo)
    require_authentication(demo)
    a_profile(demo, city="Lyon")
    plaintext = issue_token(demo)
    ProfileToken.objects.update(ciphertext=sealing.seal(secret.generate()))

    response = HttpClient().get(
        f"/rest/v1/profiles/{PC_ID}?client=demo", headers={"Authorization": f"Bearer {plaintext}"}
    )

    assert response.status_code == 200


def test_the_gates_token_query_does_not_read_the_copy(demo: Client) -> None:
    allow_retrieval(demo)
    require_authentication(demo)
    a_profile(demo, city="Lyon")
    plaintext = issue_token(demo)
    ciphertext_column = ProfileToken._meta.get_field("ciphertext").column
    token_table = ProfileToken._meta.db_table

    with CaptureQueriesContext(connection) as captured:
        response = HttpClient().get(
            f"/rest/v1/profiles/{PC_ID}?client=demo",
            headers={"Authorization": f"Bearer {plaintext}"},
        )

    assert response.status_code == 200
    token_queries = [q["sql"] for q in captured.captured_queries if token_table in q["sql"]]
    assert token_queries, "the gate looked the token up"
    for sql in token_queries:
        assert ciphertext_column not in sql.lower()


def test_the_token_the_gate_finds_has_its_copy_deferred_yet_loads_it_when_read(
    demo: Client,
) -> None:
    allow_retrieval(demo)
    plaintext = issue_token(demo)

    found = verification.stored_token(plaintext)

    assert found is not None
    assert "ciphertext" in found.token.get_deferred_fields()
    assert verification.verify(demo.pk, plaintext) == ProfileToken.objects.get()
    with CaptureQueriesContext(connection) as captured:
        ciphertext = found.token.ciphertext
    assert len(captured) == 1
    assert ciphertext is not None
    assert sealing.unseal(ciphertext) == plaintext


def test_a_replaced_or_revoked_token_loses_its_copy(demo: Client) -> None:
    allow_retrieval(demo)
    issue_token(demo)
    first = ProfileToken.objects.get()
    ProfileToken.objects.issue(
        demo, expires_in_days=90, actor=SYSTEM, previous_token_grace_seconds=3600
    )
    first.refresh_from_db()
    assert first.grace_until is not None
    assert first.ciphertext is None

    revoked = ProfileToken.objects.revoke_active(demo, actor=SYSTEM)

    assert revoked is not None
    revoked.refresh_from_db()
    assert revoked.ciphertext is None


def test_it_cannot_be_allowed_without_a_key(demo: Client, settings: Any) -> None:
    settings.TOKEN_ENCRYPTION_KEYS = ()

    with pytest.raises(ValidationError, match="No token encryption key is configured"):
        allow_retrieval(demo)

    assert ProfileApiSettings.for_client(demo).token_retrievable is False
    assert not AuditEvent.objects.exists()


# Turning it off


def test_turning_it_off_erases_every_copy_of_the_client_and_is_audited(
    demo: Client, other_client: Client
) -> None:
    allow_retrieval(demo)
    allow_retrieval(other_client)
    issue_token(demo)
    issue_token(other_client)

    ProfileApiSettings.for_client(demo).set_token_retrievable(
        False, actor=Actor.person(None, "192.0.2.1")
    )

    assert kept(demo) == [None]
    assert kept(other_client) != [None]
    event = AuditEvent.objects.filter(client=demo).first()
    assert event is not None
    assert (event.action, event.detail, event.remote_addr) == (
        AuditEvent.Action.TOKEN_RETRIEVAL_DISABLED,
        "stored copies erased: 1",
        "192.0.2.1",
    )


def test_turning_it_off_erases_in_the_same_transaction_as_the_change(
    demo: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    allow_retrieval(demo)
    issue_token(demo)

    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the audit trail is unavailable")

    monkeypatch.setattr(AuditEvent, "record", fail)
    with pytest.raises(RuntimeError):
        ProfileApiSettings.for_client(demo).set_token_retrievable(False, actor=SYSTEM)

    assert ProfileApiSettings.for_client(demo).token_retrievable is True
    assert kept(demo) != [None]


def test_a_token_generated_while_it_was_off_is_not_retrievable(demo: Client, alice: User) -> None:
    issue_token(demo)
    allow_retrieval(demo)

    assert "accessToken" not in describe().json()
    html = signed_in(alice).get(PAGE).content.decode()
    assert "Not retrievable: it was generated while retrieval was off." in html
    assert 'name="reveal"' not in html
    assert 'name="regenerate"' in html
    assert retrievals() == []


# Keys


def test_an_old_key_still_opens_a_copy_after_a_new_key_is_put_first(
    demo: Client, alice: User, settings: Any
) -> None:
    old_key, new_key = settings.TOKEN_ENCRYPTION_KEYS[0], Fernet.generate_key().decode()
    allow_retrieval(demo)
    before = issue_token(demo, expires_in_days=1)
    (sealed_before,) = kept(demo)
    assert sealed_before is not None

    settings.TOKEN_ENCRYPTION_KEYS = (new_key, old_key)
    assert sealing.unseal(sealed_before) == before
    after = issue_token(demo)
    sealed_after = ProfileToken.objects.get(revoked_at__isnull=True).ciphertext
    assert sealed_after is not None
    assert sealing.unseal(sealed_after) == after
    assert describe().json()["accessToken"] == after

    settings.TOKEN_ENCRYPTION_KEYS = (old_key,)
    assert sealing.unseal(sealed_after) is None  # sealed with the new key alone


def test_a_copy_no_configured_key_opens_is_answered_as_not_kept(
    demo: Client, alice: User, settings: Any
) -> None:
    allow_retrieval(demo)
    issue_token(demo)
    settings.TOKEN_ENCRYPTION_KEYS = (Fernet.generate_key().decode(),)

    body = describe().json()

    assert "accessToken" not in body
    assert body["lastFour"] == ProfileToken.objects.get().last_four
    assert retrievals() == []


def test_the_production_check_fails_without_a_key_while_a_client_keeps_copies(
    demo: Client, settings: Any
) -> None:
    allow_retrieval(demo)
    settings.TOKEN_ENCRYPTION_KEYS = ()
    settings.DEBUG = False

    (error,) = token_encryption_keys(databases=["default"])

    assert error.id == MISSING_KEY_ERROR
    assert error.is_serious()
    assert "demo" in error.msg
    settings.DEBUG = True
    (warning,) = token_encryption_keys(databases=["default"])
    assert warning.id == MISSING_KEY_WARNING
    assert not warning.is_serious()


def test_the_check_passes_with_a_key_or_without_clients_keeping_copies(
    demo: Client, settings: Any
) -> None:
    allow_retrieval(demo)
    settings.DEBUG = False
    assert token_encryption_keys(databases=["default"]) == []
    allow_retrieval(demo, enabled=False)
    settings.TOKEN_ENCRYPTION_KEYS = ()
    assert token_encryption_keys(databases=["default"]) == []


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed arguments
        [sys.executable, str(ROOT / "manage.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DEBUG": "false", **env},
        timeout=120,
        check=False,
    )


def test_migrate_stops_a_production_start_without_a_key_yet_migrates_an_empty_database(
    tmp_path: Path,
) -> None:
    database = tmp_path / "start.sqlite3"
    env = {"DATABASE_URL": f"sqlite:///{database}", "TARGETADMIN_VAR_DIR": str(tmp_path)}
    migrated = manage("migrate", "--verbosity", "0", **env)
    assert migrated.returncode == 0, migrated.stderr
    with sqlite3.connect(database) as db:
        db.execute(
            "INSERT INTO profiles_client (code, name, created_at) VALUES ('demo', 'Demo', 0)"
        )
        db.execute(
            "INSERT INTO profiles_profileapisettings (client_id, require_authentication, "
            "allowed_networks, token_retrievable) VALUES (1, 1, '[]', 1)"
        )

    refused = manage("migrate", "--verbosity", "0", **env)

    assert refused.returncode != 0
    assert MISSING_KEY_ERROR in refused.stderr
    assert "TOKEN_ENCRYPTION_KEYS" in refused.stderr
    key = Fernet.generate_key().decode()
    assert manage("migrate", "--verbosity", "0", TOKEN_ENCRYPTION_KEYS=key, **env).returncode == 0


def test_a_bad_key_stops_the_process_without_showing_it(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}",
        "TARGETADMIN_VAR_DIR": str(tmp_path),
    }
    good = Fernet.generate_key().decode()

    refused = manage("check", TOKEN_ENCRYPTION_KEYS=f"{good},not-a-key-at-all", **env)

    assert refused.returncode != 0
    assert "TOKEN_ENCRYPTION_KEYS: key 2 is not a Fernet key" in refused.stderr
    assert "not-a-key-at-all" not in refused.stderr


def test_make_run_creates_a_local_key_file_once(settings: Any, tmp_path: Path) -> None:
    settings.TOKEN_ENCRYPTION_KEYS = ()
    settings.TOKEN_ENCRYPTION_KEY_FILE = tmp_path / "var" / "token-encryption-key"

    call_command("create_local_token_key", stdout=StringIO())
    first = settings.TOKEN_ENCRYPTION_KEY_FILE.read_text()
    call_command("create_local_token_key", stdout=StringIO())

    assert settings.TOKEN_ENCRYPTION_KEY_FILE.read_text() == first
    Fernet(first.strip())
    assert stat.S_IMODE(settings.TOKEN_ENCRYPTION_KEY_FILE.stat().st_mode) == 0o600


def test_no_local_key_file_is_made_when_keys_are_configured(settings: Any, tmp_path: Path) -> None:
    settings.TOKEN_ENCRYPTION_KEY_FILE = tmp_path / "token-encryption-key"

    call_command("create_local_token_key", stdout=StringIO())

    assert not settings.TOKEN_ENCRYPTION_KEY_FILE.exists()


def test_settings_read_the_local_key_file(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    (tmp_path / "token-encryption-key").write_text(key + "\n")
    shown = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(len(settings.TOKEN_ENCRYPTION_KEYS))",
        DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}",
        TARGETADMIN_VAR_DIR=str(tmp_path),
    )
    assert shown.stdout.strip().splitlines()[-1] == "1", shown.stderr


# The management API


def test_an_approver_allows_retrieval_through_the_api_and_reads_it_back(
    demo: Client, alice: User
) -> None:
    response = patch_settings({"profileTokenRetrievable": True})

    assert response.status_code == 200
    assert response.json()["profileTokenRetrievable"] is True
    read = HttpClient().get(SETTINGS_URL, headers=basic("alice")).json()
    assert read == {
        "enableProfileApiAuthentication": False,
        "profileApiAllowedNetworks": [],
        "profileTokenRetrievable": True,
    }
    event = AuditEvent.objects.get()
    assert (event.action, event.actor) == (AuditEvent.Action.TOKEN_RETRIEVAL_ENABLED, alice)


def test_turning_it_off_through_the_api_erases_the_copy(demo: Client, alice: User) -> None:
    allow_retrieval(demo)
    issue_token(demo)

    response = patch_settings({"profileTokenRetrievable": False})

    assert response.json()["profileTokenRetrievable"] is False
    assert kept(demo) == [None]
    assert "accessToken" not in describe().json()


@pytest.mark.parametrize("value", ["true", 1, None, [], {}])
def test_the_api_refuses_a_value_that_is_not_a_boolean(
    demo: Client, alice: User, value: object
) -> None:
    response = patch_settings({"profileTokenRetrievable": value})

    assert response.status_code == 400
    message = response.json()["errors"][0]["message"]
    if value is None:
        assert message.startswith("Send at least one of")
    else:
        assert message == "profileTokenRetrievable: must be true or false."
    assert ProfileApiSettings.for_client(demo).token_retrievable is False


def test_the_api_refuses_to_allow_it_without_a_key(
    demo: Client, alice: User, settings: Any
) -> None:
    settings.TOKEN_ENCRYPTION_KEYS = ()

    response = patch_settings(
        {"profileTokenRetrievable": True, "enableProfileApiAuthentication": True}
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["message"].startswith(
        "profileTokenRetrievable: No token encryption key is configured"
    )
    assert ProfileApiSettings.for_client(demo).require_authentication is False


def test_get_token_answers_the_access_token_while_a_copy_is_kept(demo: Client, alice: User) -> None:
    allow_retrieval(demo)
    plaintext = issue_token(demo)

    response = describe()

    assert response.status_code == 200
    body = response.json()
    assert body["accessToken"] == plaintext
    assert body["lastFour"] == plaintext[-4:]
    (event,) = retrievals()
    assert (event.actor, event.token_last_four, event.detail) == (
        alice,
        plaintext[-4:],
        "management API",
    )
    assert plaintext[4:] not in str(AuditEvent.objects.values_list())


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"},  # a link elsewhere
        {"Sec-Fetch-Site": "same-site"},  # another host name of the same site
        {"Sec-Fetch-Site": "none"},  # typed, or a bookmark
        {"Origin": "https://evil.example"},  # a browser that sends no Sec-Fetch-Site
        {},  # neither header: nothing says the request came from this site
    ],
)
def test_a_session_get_from_anywhere_but_this_site_answers_without_the_token_unaudited(
    demo: Client, alice: User, headers: dict[str, str]
) -> None:
    allow_retrieval(demo)
    plaintext = issue_token(demo)

    response = signed_in(alice).get(TOKEN_URL, headers=headers)

    assert response.status_code == 200
    body = response.json()
    assert "accessToken" not in body
    assert body["lastFour"] == plaintext[-4:]
    assert plaintext[4:] not in response.content.decode()
    assert retrievals() == []


@pytest.mark.parametrize(
    "headers",
    [{"Sec-Fetch-Site": "same-origin"}, {"Origin": "http://testserver"}],
)
def test_a_session_get_from_a_page_of_this_site_answers_the_token_audited(
    demo: Client, alice: User, headers: dict[str, str]
) -> None:
    allow_retrieval(demo)
    plaintext = issue_token(demo)

    response = signed_in(alice).get(TOKEN_URL, headers=headers)

    assert response.json()["accessToken"] == plaintext
    (event,) = retrievals()
    assert event.actor == alice


def test_a_basic_get_answers_the_token_whatever_its_fetch_headers_say(
    demo: Client, alice: User
) -> None:
    allow_retrieval(demo)
    plaintext = issue_token(demo)

    response = HttpClient().get(
        TOKEN_URL, headers={**basic("alice"), "Sec-Fetch-Site": "cross-site"}
    )

    assert response.json()["accessToken"] == plaintext
    assert len(retrievals()) == 1


def test_get_token_answers_as_before_without_a_copy(demo: Client, alice: User) -> None:
    issue_token(demo)

    body = describe().json()

    assert "accessToken" not in body
    assert retrievals() == []


def test_an_editor_cannot_change_the_option_or_retrieve_the_token(
    demo: Client, alice: User, bob: User
) -> None:
    allow_retrieval(demo)
    plaintext = issue_token(demo)

    assert patch_settings({"profileTokenRetrievable": False}, username="bob").status_code == 403
    refused = describe("bob")

    assert refused.status_code == 403
    assert plaintext not in refused.content.decode()
    assert ProfileApiSettings.for_client(demo).token_retrievable is True
    assert retrievals() == []


def test_a_member_of_another_client_is_refused_like_any_non_approver(
    demo: Client, charlie: User
) -> None:
    """The management API answers 403 to every signed-in caller without the role
    (docs/management-api.md#authentication-and-access); the card answers 404."""
    allow_retrieval(demo)
    plaintext = issue_token(demo)

    refused = describe("charlie")

    assert refused.status_code == 403
    assert plaintext not in refused.content.decode()
    assert patch_settings({"profileTokenRetrievable": False}, username="charlie").status_code == 403
    assert ProfileApiSettings.for_client(demo).token_retrievable is True
    assert retrievals() == []


# The card


def test_an_approver_allows_retrieval_on_the_card_with_its_warning(
    demo: Client, alice: User
) -> None:
    http = signed_in(alice)
    assert "Trades safety for compatibility" in http.get(PAGE).content.decode()

    saved = http.post(PAGE, {"token_retrievable": "on", "save_retrievable": "1"}, follow=True)

    assert ProfileApiSettings.for_client(demo).token_retrievable is True
    assert "Token retrieval allowed" in saved.content.decode()
    event = AuditEvent.objects.get()
    assert (event.action, event.actor) == (AuditEvent.Action.TOKEN_RETRIEVAL_ENABLED, alice)


def test_turning_it_off_on_the_card_erases_the_copy_and_hides_reveal(
    demo: Client, alice: User
) -> None:
    allow_retrieval(demo)
    issue_token(demo)
    http = signed_in(alice)
    assert 'name="reveal"' in http.get(PAGE).content.decode()

    page = http.post(PAGE, {"save_retrievable": "1"}, follow=True).content.decode()

    assert kept(demo) == [None]
    assert "every kept copy of the token was erased" in page
    assert 'name="reveal"' not in page
    assert "Not retrievable: only its digest is kept." in page


def test_reveal_shows_the_token_once_in_the_answer_and_is_audited(
    demo: Client, alice: User
) -> None:
    allow_retrieval(demo)
    plaintext = issue_token(demo)
    http = signed_in(alice)

    response = http.post(PAGE, {"reveal": "1"}, REMOTE_ADDR="192.0.2.8")

    assert response.status_code == 200
    assert not response.has_header("Location")
    assert "no-store" in response["Cache-Control"]
    assert plaintext in response.content.decode()
    assert [str(message) for message in response.context["messages"]] == []
    (event,) = retrievals()
    assert (event.actor, event.remote_addr, event.detail) == (
        alice,
        "192.0.2.8",
        "revealed on the screen",
    )
    assert plaintext not in http.get(PAGE).content.decode()


def test_reveal_without_a_copy_shows_nothing_and_says_so(demo: Client, alice: User) -> None:
    plaintext = issue_token(demo)

    page = signed_in(alice).post(PAGE, {"reveal": "1"}, follow=True).content.decode()

    assert plaintext not in page
    assert "The token cannot be revealed" in page
    assert retrievals() == []


def test_after_the_key_is_replaced_the_card_says_the_copy_is_unreadable_and_offers_regenerate(
    demo: Client, alice: User, settings: Any
) -> None:
    allow_retrieval(demo)
    issue_token(demo)
    settings.TOKEN_ENCRYPTION_KEYS = (Fernet.generate_key().decode(),)
    http = signed_in(alice)

    page = http.get(PAGE).content.decode()

    assert 'name="reveal"' not in page  # nor "Retrievable", which goes with the button
    assert (
        "Not retrievable: the kept copy cannot be read with the current encryption keys."
        " Re-generate it to be able to retrieve it again." in page
    )
    assert 'name="regenerate"' in page
    http.post(PAGE, {"expires_in_days": "30", "regenerate": "confirmed"})
    assert 'name="reveal"' in http.get(PAGE).content.decode()


def test_only_an_approver_may_reveal_or_change_the_option_on_the_card(
    demo: Client, alice: User, bob: User, charlie: User
) -> None:
    allow_retrieval(demo)
    plaintext = issue_token(demo)

    for user, status in ((bob, 403), (charlie, 404)):
        http = signed_in(user)
        refused = http.post(PAGE, {"reveal": "1"})
        assert refused.status_code == status
        assert plaintext not in refused.content.decode()
        assert http.post(PAGE, {"save_retrievable": "1"}).status_code == status

    assert ProfileApiSettings.for_client(demo).token_retrievable is True
    assert retrievals() == []


def test_reveal_and_the_option_need_the_csrf_token(demo: Client, alice: User) -> None:
    allow_retrieval(demo)
    issue_token(demo)
    http = HttpClient(enforce_csrf_checks=True)
    http.force_login(alice)

    assert http.post(PAGE, {"reveal": "1"}).status_code == 403
    assert http.post(PAGE, {"save_retrievable": "1"}).status_code == 403

    assert retrievals() == []
    assert ProfileApiSettings.for_client(demo).token_retrievable is True


def test_the_card_refuses_to_allow_it_without_a_key(
    demo: Client, alice: User, settings: Any
) -> None:
    settings.TOKEN_ENCRYPTION_KEYS = ()

    response = signed_in(alice).post(PAGE, {"token_retrievable": "on", "save_retrievable": "1"})

    assert response.status_code == 400
    assert "No token encryption key is configured" in response.content.decode()
    assert ProfileApiSettings.for_client(demo).token_retrievable is False


# Keys removed while the option is on: generating is refused, nothing half-done


@pytest.fixture
def keys_removed(demo: Client, settings: Any) -> str:
    """The option on and a working token issued, then the keys taken out of the settings;
    the audit trail starts empty."""
    allow_retrieval(demo)
    plaintext = issue_token(demo)
    settings.TOKEN_ENCRYPTION_KEYS = ()
    AuditEvent.objects.all().delete()
    return plaintext


def nothing_was_issued(client: Client, working: str) -> None:
    (token,) = ProfileToken.objects.filter(client=client)
    assert token.digest == secret.digest(working)
    assert (token.revoked_at, token.grace_until) == (None, None)
    assert verification.verify(client.pk, working) == token
    generated = (AuditEvent.Action.TOKEN_GENERATED, AuditEvent.Action.TOKEN_REGENERATED)
    assert AuditEvent.objects.filter(action__in=generated).count() == 0


def test_issuing_is_refused_without_a_key_while_the_option_is_on(
    demo: Client, keys_removed: str
) -> None:
    with pytest.raises(ProductError) as refused:
        ProfileToken.objects.issue(
            demo, expires_in_days=90, actor=SYSTEM, previous_token_grace_seconds=3600
        )

    assert refused.value.code == ErrorCode.TOKEN_ENCRYPTION_KEY_MISSING
    assert "TOKEN_ENCRYPTION_KEYS" in refused.value.message
    nothing_was_issued(demo, keys_removed)
    assert not AuditEvent.objects.exists()


def test_without_the_option_a_token_is_issued_with_no_key_at_all(
    demo: Client, other_client: Client, keys_removed: str
) -> None:
    plaintext = issue_token(other_client)

    assert verification.verify(other_client.pk, plaintext).ciphertext is None


def test_the_card_refuses_to_generate_without_a_key_and_says_why(
    demo: Client, alice: User, keys_removed: str
) -> None:
    http = signed_in(alice)

    response = http.post(
        PAGE, {"regenerate": "confirmed", "expires_in_days": "90", "previous_token_grace": "0"}
    )

    assert response.status_code == 503
    page = response.content.decode()
    assert "no token encryption key is configured" in page
    assert "new_token" not in response.context
    assert keys_removed not in page
    nothing_was_issued(demo, keys_removed)
    assert not AuditEvent.objects.exists()


def test_the_management_api_refuses_to_generate_without_a_key_in_its_envelope(
    demo: Client, alice: User, keys_removed: str
) -> None:
    response = HttpClient().post(
        f"{TOKEN_URL}?authorizationScope=profile_api&expiresInDays=90", headers=basic("alice")
    )

    assert response.status_code == 503
    body = response.json()
    assert body["httpStatus"] == 503
    (error,) = body["errors"]
    assert error["errorCode"] == "token_encryption_key_missing"
    assert "TOKEN_ENCRYPTION_KEYS" in error["message"]
    assert "accessToken" not in body
    nothing_was_issued(demo, keys_removed)
    assert not AuditEvent.objects.exists()


def test_the_generate_token_command_refuses_without_a_key(demo: Client, keys_removed: str) -> None:
    out = StringIO()

    with pytest.raises(CommandError, match="no token encryption key is configured"):
        call_command("generate_token", "demo", stdout=out, stderr=StringIO())

    assert out.getvalue() == ""
    nothing_was_issued(demo, keys_removed)
