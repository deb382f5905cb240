"""What the test provider says about people and scripts, and the faults it can be told to
commit (``tests/provider.py`` writes the fault's name into the file ``fault``)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

from django.conf import settings
from jwcrypto import jwk, jwt
from oauth2_provider.oauth2_validators import OAuth2Validator

FAULTS = ("expired_id_token", "wrong_audience", "tampered_id_token", "replayed_nonce")


def current_fault() -> str:
    path = settings.STATE / "fault"
    return path.read_text().strip() if path.exists() else ""


def _groups(user: Any) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True)) if user is not None else []


class Validator(OAuth2Validator):
    # Every claim goes into the ID token whatever the scopes: the groups claim has none.
    oidc_claim_scope = None

    def get_additional_claims(self, request: Any) -> dict[str, Any]:
        return {
            "preferred_username": request.user.username,
            "email": request.user.email,
            "groups": _groups(request.user),
        }

    def get_id_token_dictionary(
        self, token: Any, token_handler: Any, request: Any
    ) -> tuple[dict[str, Any], Any]:
        claims, expiration = super().get_id_token_dictionary(token, token_handler, request)
        fault = current_fault()
        nonces = settings.STATE / "last-nonce"
        if fault == "expired_id_token":
            claims["exp"] = int(time.time()) - 600
        elif fault == "wrong_audience":
            claims["aud"] = "another-application"
        elif fault == "replayed_nonce":
            claims["nonce"] = nonces.read_text()
        elif request.nonce:
            nonces.write_text(request.nonce)
        return claims, expiration

    def finalize_id_token(self, id_token: Any, token: Any, token_handler: Any, request: Any) -> str:
        signed: str = super().finalize_id_token(id_token, token, token_handler, request)
        if current_fault() != "tampered_id_token":
            return signed
        header, payload, signature = signed.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["groups"] = [*claims.get("groups", []), "targetadmin:acme:approver"]
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"{header}.{forged}.{signature}"


def signing_key() -> jwk.JWK:
    return jwk.JWK.from_pem(settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"].encode())


def signed_access_token(request: Any) -> str:
    """Access tokens as JWTs signed with the provider's key, as Keycloak, Okta and Entra ID
    issue them: for a script (client credentials), its application's owner's groups."""
    user = request.user if getattr(request, "user", None) else request.client.user
    now = int(time.time())
    key = signing_key()
    claims = {
        "iss": settings.ISSUER,
        "aud": settings.API_AUDIENCE,
        "sub": str(user.pk),
        "client_id": request.client.client_id,
        "preferred_username": user.username,
        "groups": _groups(user),
        "iat": now,
        "jti": str(uuid.uuid4()),
        "exp": now + settings.OAUTH2_PROVIDER["ACCESS_TOKEN_EXPIRE_SECONDS"],
    }
    token = jwt.JWT(header={"alg": "RS256", "kid": key.thumbprint()}, claims=claims)
    token.make_signed_token(key)
    return str(token.serialize())
