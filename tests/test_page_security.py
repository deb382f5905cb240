"""Pages and sessions: a strict Content-Security-Policy, security headers, session cookies
that are HTTP-only and end, on every page people and operators open."""

from __future__ import annotations

import runpy
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client as HttpClient

from profiles.access.actors import Actor
from profiles.models import Client, Membership, ProfileToken, Role
from tests.batches import batch_id_of, submit
from tests.support import PASSWORD, signed_in

SETTINGS_FILE = Path(__file__).resolve().parent.parent / "targetadmin" / "settings.py"


def policy(response: Any) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in response["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def nonce_of(response: Any) -> str | None:
    """The policy's nonce; Django adds one only when the page used it."""
    sources = [v for v in policy(response)["script-src"] if v.startswith("'nonce-")]
    return sources[0].removeprefix("'nonce-").removesuffix("'") if sources else None


def own_sources(response: Any) -> list[str]:
    nonce = nonce_of(response)
    return ["'self'"] if nonce is None else ["'self'", f"'nonce-{nonce}'"]


class InlineCode(HTMLParser):
    """Every place a page could run script or apply style from its own markup."""

    def __init__(self) -> None:
        super().__init__()
        self.inline_blocks: list[tuple[str, str | None]] = []  # (tag, nonce)
        self.handler_attributes: list[str] = []
        self.style_attributes: list[str] = []
        self.script_urls: list[str] = []
        self.nonces: list[str | None] = []  # of every tag that carries one

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if "nonce" in attributes:
            self.nonces.append(attributes["nonce"])
        if tag == "style" or (tag == "script" and "src" not in attributes):
            self.inline_blocks.append((tag, attributes.get("nonce")))
        for name, value in attrs:
            if name.startswith("on"):
                self.handler_attributes.append(f"<{tag} {name}>")
            if name == "style":
                self.style_attributes.append(f"<{tag} style={value!r}>")
            if name in {"href", "src", "action"} and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.script_urls.append(f"<{tag} {name}={value!r}>")


def inline_code(response: Any) -> InlineCode:
    parser = InlineCode()
    parser.feed(response.content.decode())
    return parser


@pytest.fixture
def root(db: None) -> User:
    return User.objects.create_superuser("root", password=PASSWORD)


@pytest.fixture
def pages(alice: User, root: User, demo: Client, other_client: Client) -> list[tuple[str, Any]]:
    """(name, response) of every kind of page: sign-in, people's pages, errors, the admin."""
    ProfileToken.objects.issue(demo, expires_in_days=90, actor=Actor.person(alice))
    Membership.objects.create(user=alice, client=other_client, role=Role.OBSERVER)
    batch_id = batch_id_of(submit(HttpClient(), "batch=pcId,a\np1,x\nbad/,x,y\n"))
    anonymous, people, operator = HttpClient(), signed_in(alice), signed_in(root)
    return [
        ("sign-in", anonymous.get("/accounts/login/")),
        ("home", people.get("/")),
        ("settings screen", people.get("/setup/demo/implementation/")),
        (
            "re-generate confirmation",
            people.post(
                "/setup/demo/implementation/", {"regenerate": "ask", "expires_in_days": "90"}
            ),
        ),
        ("profiles", people.get("/clients/demo/profiles/?by=pcId&profile_id=p1")),
        ("batches", people.get("/clients/demo/batches/")),
        ("batch", people.get(f"/clients/demo/batches/{batch_id}/")),
        ("403", people.get("/setup/acme/implementation/")),
        ("404", people.get("/setup/nowhere/implementation/")),
        ("admin sign-in", anonymous.get("/admin/login/")),
        ("admin index", operator.get("/admin/")),
        ("admin client list", operator.get("/admin/profiles/client/")),
        ("admin client form", operator.get(f"/admin/profiles/client/{demo.pk}/change/")),
        ("admin audit list", operator.get("/admin/profiles/auditevent/")),
        ("admin user form", operator.get(f"/admin/auth/user/{alice.pk}/change/")),
        ("admin batch form", operator.get(f"/admin/profiles/batch/{batch_id}/change/")),
    ]


def test_it_sends_the_strict_policy_and_security_headers_on_every_page(
    pages: list[tuple[str, Any]],
) -> None:
    for name, response in pages:
        assert response.status_code in {200, 403, 404}, name
        directives = policy(response)
        assert directives["default-src"] == ["'self'"], name
        assert directives["script-src"] == own_sources(response), name
        assert directives["style-src"] == own_sources(response), name
        assert directives["object-src"] == ["'none'"], name
        assert directives["base-uri"] == ["'none'"], name
        assert directives["form-action"] == ["'self'"], name
        assert directives["frame-ancestors"] == ["'none'"], name
        assert response["X-Content-Type-Options"] == "nosniff", name
        assert response["Referrer-Policy"] == "same-origin", name
        assert response["Cross-Origin-Opener-Policy"] == "same-origin", name
        assert response["X-Frame-Options"] == "DENY", name


def test_it_allows_no_inline_code_except_by_the_requests_nonce(
    pages: list[tuple[str, Any]],
) -> None:
    for name, response in pages:
        found = inline_code(response)
        for tag, nonce in found.inline_blocks:
            assert nonce is not None, f"{name}: inline <{tag}> without a nonce"
            assert nonce == nonce_of(response), f"{name}: inline <{tag}> with a stale nonce"
        assert found.handler_attributes == [], name
        assert found.style_attributes == [], name
        assert found.script_urls == [], name
        assert set(found.nonces) <= {nonce_of(response)}, name
    # The admin's pages mark their style sheets with the nonce, so the check is not vacuous.
    assert any(inline_code(response).nonces for _, response in pages)


def test_it_uses_a_fresh_nonce_for_every_response(root: User) -> None:
    operator = signed_in(root)

    first, second = operator.get("/admin/profiles/client/"), operator.get("/admin/profiles/client/")

    assert nonce_of(first) is not None
    assert nonce_of(second) is not None
    assert nonce_of(first) != nonce_of(second)
    assert len(nonce_of(first) or "") >= 16


def test_it_sends_the_policy_on_api_answers_too(demo: Client) -> None:
    response = HttpClient().get("/rest/v1/profiles/nobody?client=demo")

    assert response.status_code == 404
    assert policy(response)["default-src"] == ["'self'"]
    assert response["X-Content-Type-Options"] == "nosniff"


def test_it_keeps_the_session_cookie_away_from_scripts_and_other_sites(alice: User) -> None:
    http = HttpClient()

    response = http.post("/accounts/login/", {"username": "alice", "password": PASSWORD})

    cookie = response.cookies["sessionid"]
    assert response.status_code == 302
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == 8 * 60 * 60


def test_it_ends_a_session_once_it_is_older_than_its_age(alice: User, settings: Any) -> None:
    settings.SESSION_COOKIE_AGE = 1
    http = HttpClient()
    http.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert http.get("/setup/demo/implementation/").status_code == 200

    time.sleep(1.2)

    response = http.get("/setup/demo/implementation/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_it_can_end_sessions_when_the_browser_closes(alice: User, settings: Any) -> None:
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = True
    http = HttpClient()

    response = http.post("/accounts/login/", {"username": "alice", "password": PASSWORD})

    cookie = response.cookies["sessionid"]
    assert cookie["max-age"] == ""
    assert cookie["expires"] == ""


def settings_from(monkeypatch: pytest.MonkeyPatch, **environment: str) -> dict[str, Any]:
    """targetadmin/settings.py as a process started with ``environment`` would read it."""
    monkeypatch.setenv("SECRET_KEY", "a-key-for-reading-the-settings-only")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE))


def test_it_reads_the_session_lifetime_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configured = settings_from(
        monkeypatch, SESSION_COOKIE_AGE="900", SESSION_EXPIRE_AT_BROWSER_CLOSE="true"
    )

    assert configured["SESSION_COOKIE_AGE"] == 900
    assert configured["SESSION_EXPIRE_AT_BROWSER_CLOSE"] is True
    assert configured["SESSION_COOKIE_HTTPONLY"] is True


def test_it_refuses_a_session_lifetime_it_does_not_understand(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(Exception, match="SESSION_COOKIE_AGE"):
        settings_from(monkeypatch, SESSION_COOKIE_AGE="8h")


def test_it_escapes_a_hostile_next_parameter_on_the_sign_in_page(db: None) -> None:
    response = HttpClient().get("/accounts/login/?next=/%22%3E%3Cscript%3Ealert(1)%3C/script%3E")

    html = response.content.decode()
    assert "<script>alert(1)</script>" not in html
    assert inline_code(response).inline_blocks == []


def test_it_marks_the_cookies_secure_and_http_only_under_the_production_settings(
    alice: User, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    production = settings_from(monkeypatch, HTTPS_ONLY="true", DEBUG="false")
    for name in ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY"):
        setattr(settings, name, production[name])
    http = HttpClient(enforce_csrf_checks=True)

    form = http.get("/accounts/login/", secure=True)
    token = form.cookies["csrftoken"].value
    response = http.post(
        "/accounts/login/",
        {"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": token},
        secure=True,
        headers={"Referer": "https://testserver/accounts/login/"},
    )

    assert response.status_code == 302
    session, csrf = response.cookies["sessionid"], response.cookies["csrftoken"]
    assert session["secure"] is True
    assert session["httponly"] is True
    assert session["samesite"] == "Lax"
    assert csrf["secure"] is True
    assert form.cookies["csrftoken"]["secure"] is True


def test_it_leaves_cookies_usable_over_plain_http_on_a_local_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local = settings_from(monkeypatch)

    assert local["SESSION_COOKIE_SECURE"] is False
    assert local["CSRF_COOKIE_SECURE"] is False
