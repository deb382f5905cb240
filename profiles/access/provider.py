"""The identity provider (docs/operations.md#single-sign-on): its endpoints, read from its
OpenID Connect discovery document, and the one check of the JSON Web Tokens it signs, ID
tokens at sign-in and access tokens on the management API alike.

A token is checked against the provider's published keys (JWKS, through PyJWT's
``PyJWKClient``, which keeps them for a few minutes): its signature with an asymmetric
algorithm the provider announces, its issuer, its audience, and its expiry.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from django.conf import settings

# How long the discovery document is kept before it is read again.
DISCOVERY_SECONDS = 3600
# Keys a signature may be made with: never "none", never a shared secret (HS256).
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")


class ProviderUnavailable(Exception):
    """The provider could not be reached, or did not answer as a provider does."""


class TokenRefused(Exception):
    """A token the provider did not sign, or not for us, or no longer valid."""


@dataclass(frozen=True)
class Provider:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None
    algorithms: tuple[str, ...]


_lock = threading.Lock()
_discovered: dict[str, tuple[float, Provider]] = {}
_key_sets: dict[str, jwt.PyJWKClient] = {}


def is_configured() -> bool:
    return bool(settings.OIDC_ISSUER)


def _get_json(url: str) -> Any:
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        return response.json()
    except (requests.RequestException, ValueError) as error:
        raise ProviderUnavailable(f"{url}: {type(error).__name__}") from error


def provider() -> Provider:
    """The configured provider, from its discovery document (kept ``DISCOVERY_SECONDS``)."""
    issuer = settings.OIDC_ISSUER
    with _lock:
        kept = _discovered.get(issuer)
    if kept is not None and kept[0] > time.monotonic():
        return kept[1]
    document = _get_json(f"{issuer}/.well-known/openid-configuration")
    try:
        if document["issuer"].rstrip("/") != issuer:
            raise ProviderUnavailable(f"the discovery document names issuer {document['issuer']!r}")
        found = Provider(
            issuer=document["issuer"],
            authorization_endpoint=document["authorization_endpoint"],
            token_endpoint=document["token_endpoint"],
            jwks_uri=document["jwks_uri"],
            end_session_endpoint=document.get("end_session_endpoint"),
            algorithms=tuple(
                algorithm
                for algorithm in document.get("id_token_signing_alg_values_supported", ["RS256"])
                if algorithm in ASYMMETRIC
            ),
        )
    except (KeyError, TypeError, AttributeError) as error:
        raise ProviderUnavailable(f"the discovery document lacks {error}") from error
    with _lock:
        _discovered[issuer] = (time.monotonic() + DISCOVERY_SECONDS, found)
    return found


def _key_set(uri: str) -> jwt.PyJWKClient:
    with _lock:
        if uri not in _key_sets:
            _key_sets[uri] = jwt.PyJWKClient(
                uri, cache_keys=True, lifespan=300, timeout=settings.OIDC_TIMEOUT
            )
        return _key_sets[uri]


def verified_claims(token: str, *, audience: str) -> dict[str, Any]:
    """The claims of ``token`` once its signature, issuer, audience and expiry are checked;
    ``TokenRefused`` saying which failed, or ``ProviderUnavailable``."""
    known = provider()
    try:
        key = _key_set(known.jwks_uri).get_signing_key_from_jwt(token)
    except jwt.PyJWKClientConnectionError as error:
        raise ProviderUnavailable(f"{known.jwks_uri}: {error}") from error
    except jwt.PyJWKClientError as error:
        raise TokenRefused("it is not signed with one of the provider's keys") from error
    except jwt.DecodeError as error:
        raise TokenRefused("it is not a JSON Web Token") from error
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=list(known.algorithms),
            audience=audience,
            issuer=known.issuer,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            leeway=30,
        )
    except jwt.ExpiredSignatureError as error:
        raise TokenRefused("it has expired") from error
    except jwt.InvalidAudienceError as error:
        raise TokenRefused("it was issued for another application (audience)") from error
    except jwt.InvalidIssuerError as error:
        raise TokenRefused("another issuer signed it") from error
    except jwt.InvalidSignatureError as error:
        raise TokenRefused("its signature does not match its content") from error
    except jwt.InvalidTokenError as error:
        raise TokenRefused(f"it is not valid ({error})") from error
    return claims
