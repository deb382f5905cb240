"""A real OpenID Connect provider for the single sign-on tests (tests/identity_provider),
started as its own process on a free loopback port, with its own SQLite database and an RSA
signing key made at start, and what the tests do with it: people and their groups,
applications, faults, signing in at its page as a browser would, and targetadmin's side of
that journey in Django's test client."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.http import HttpResponse
from django.test import Client as HttpClient
from django.urls import reverse

from bench.loopback import free_port, wait_until_listening
from tests.support import PASSWORD

ROOT = Path(__file__).resolve().parent.parent
API_AUDIENCE = "targetadmin-api"
# The relying party (targetadmin) as the provider knows it; the callback of Django's test
# client and of any loopback port (the browser tests' live server).
CLIENT_ID = "targetadmin"
CLIENT_SECRET = "targetadmin-client-secret"
REDIRECT_URIS = "http://testserver/oidc/callback/ http://localhost/oidc/callback/"
SIGNED_OUT_URIS = "http://testserver/accounts/login/ http://localhost/accounts/login/"
# The provider's groups for Approvers and Editors of demo.
APPROVERS = "targetadmin:demo:approver"
EDITORS = "targetadmin:demo:editor"


@dataclass(frozen=True)
class IdentityProvider:
    url: str
    state: Path
    control_secret: str

    @property
    def issuer(self) -> str:
        return f"{self.url}/o"

    @property
    def signing_key(self) -> bytes:
        """The provider's private key, PEM: for tokens only it could have signed."""
        return (self.state / "signing-key.pem").read_bytes()

    def _control(self, action: str, **spec: object) -> None:
        response = requests.post(
            f"{self.url}/control/",
            json={"action": action, **spec},
            headers={"X-Control-Secret": self.control_secret},
            timeout=30,
        )
        response.raise_for_status()

    def person(self, username: str, *groups: str) -> None:
        """``username`` (password ``PASSWORD``) in exactly ``groups``."""
        self._control(
            "person",
            username=username,
            password=PASSWORD,
            email=f"{username}@example.com",
            groups=list(groups),
        )

    def script(self, client_id: str, *groups: str) -> str:
        """A client-credentials application acting with ``groups``; its secret."""
        client_secret = secrets.token_urlsafe(24)
        self.person(f"{client_id}-owner", *groups)
        self._control(
            "application",
            client_id=client_id,
            client_secret=client_secret,
            grant="client-credentials",
            owner=f"{client_id}-owner",
        )
        return client_secret

    def script_token(self, client_id: str, *groups: str) -> str:
        """An access token for a new script acting with ``groups``."""
        return self.access_token(client_id, self.script(client_id, *groups))

    def access_token(self, client_id: str, client_secret: str) -> str:
        """An access token for ``client_id`` by the client-credentials flow."""
        response = requests.post(
            f"{self.issuer}/token/",
            data={"grant_type": "client_credentials"},
            auth=(client_id, client_secret),
            timeout=30,
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def fault(self, name: str) -> None:
        """Commit ``name`` (tests/identity_provider/validator.py FAULTS) from now on; ``""``
        to behave again."""
        self._control("fault", name=name)

    def sign_in(self, authorize_url: str, username: str) -> str:
        """Follow ``authorize_url`` in a browser of its own, sign in there as ``username``,
        and return where the provider sends the browser back (the callback, with code and
        state)."""
        with requests.Session() as browser:
            page = browser.get(authorize_url, timeout=30)
            page.raise_for_status()
            csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
            assert csrf is not None, page.text[:500]
            next_url = re.search(r'name="next" value="([^"]*)"', page.text)
            assert next_url is not None
            answer = browser.post(
                page.url,
                data={
                    "csrfmiddlewaretoken": csrf.group(1),
                    "username": username,
                    "password": PASSWORD,
                    "next": unescape(next_url.group(1)),
                },
                headers={"Referer": page.url},
                allow_redirects=False,
                timeout=30,
            )
            while answer.status_code == 302 and answer.headers["Location"].startswith(
                ("/", self.url)
            ):
                answer = browser.get(
                    urljoin(self.url, answer.headers["Location"]),
                    allow_redirects=False,
                    timeout=30,
                )
            assert answer.status_code == 302, (answer.status_code, answer.text[:500])
            return answer.headers["Location"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def start(http: HttpClient) -> str:
    """Click "Sign in with …": where the browser is sent (the provider's authorize URL)."""
    response = http.get(reverse("oidc_authentication_init"))
    assert response.status_code == 302
    return str(response["Location"])


def come_back(http: HttpClient, callback: str) -> HttpResponse:
    """The browser's return to targetadmin's callback, as the provider sent it."""
    split = urlsplit(callback)
    assert split.path == reverse("oidc_authentication_callback")
    response: HttpResponse = http.get(f"{split.path}?{split.query}")
    return response


def sign_in(http: HttpClient, provider: IdentityProvider, username: str) -> HttpResponse:
    """The whole journey; the answer to the provider's redirect back."""
    return come_back(http, provider.sign_in(start(http), username))


def _signing_key_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@contextmanager
def running_provider(state: Path) -> Iterator[IdentityProvider]:
    """The provider, migrated, with targetadmin registered as its application."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    (state / "signing-key.pem").write_bytes(_signing_key_pem())
    control_secret = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.identity_provider.settings",
        "PROVIDER_STATE_DIR": str(state),
        "PROVIDER_ISSUER": f"{url}/o",
        "PROVIDER_API_AUDIENCE": API_AUDIENCE,
        "PROVIDER_SECRET_KEY": secrets.token_urlsafe(40),
        "PROVIDER_CONTROL_SECRET": control_secret,
        "PYTHONPATH": str(ROOT),
    }
    django = [sys.executable, "-m", "django"]
    subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [*django, "migrate", "--noinput", "-v0"], env=env, cwd=ROOT, check=True
    )
    log = (state / "provider.log").open("wb")
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [*django, "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_listening(port, server)
        provider = IdentityProvider(url, state, control_secret)
        provider._control(
            "application",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            grant="authorization-code",
            redirect_uris=REDIRECT_URIS,
            post_logout_redirect_uris=SIGNED_OUT_URIS,
        )
        yield provider
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
