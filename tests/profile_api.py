"""Helpers shared by the profile API tests: tokens, profiles, and reading the envelopes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from xml.etree import ElementTree

from django.http import HttpResponse
from django.test import Client as HttpClient
from django.utils import timezone

from profiles.access.actors import SYSTEM
from profiles.models import Client, Profile, ProfileApiSettings, ProfileToken

PC_ID = "1368007744041-575948.01_00"
THIRD_PARTY_ID = "u-1"


def require_authentication(client: Client, enabled: bool = True) -> None:
    ProfileApiSettings.for_client(client).set_require_authentication(enabled, actor=SYSTEM)


def issue_token(client: Client, *, days_ago: int = 0, expires_in_days: int = 90) -> str:
    now = timezone.now() - timedelta(days=days_ago)
    _, plaintext = ProfileToken.objects.issue(
        client, expires_in_days=expires_in_days, actor=SYSTEM, now=now
    )
    return plaintext


def a_profile(client: Client, **attributes: str) -> Profile:
    stamp = timezone.now().isoformat()
    return Profile.objects.create(
        client=client,
        pc_id=PC_ID,
        third_party_id=THIRD_PARTY_ID,
        attributes={
            name: {"value": value, "modifiedAt": stamp} for name, value in attributes.items()
        },
    )


def xml_fields(response: HttpResponse) -> dict[str, str]:
    assert response["Content-Type"].startswith("application/xml")
    root = ElementTree.fromstring(response.content)  # noqa: S314 (our own response)
    assert root.tag == "response"
    return {child.tag: child.text or "" for child in root}


def message_of(response: HttpResponse) -> str:
    if response["Content-Type"].startswith("application/xml"):
        fields = xml_fields(response)
        assert fields["success"] == "false"
        return fields["message"]
    document: dict[str, Any] = json.loads(response.content)
    assert document["status"] == response.status_code
    return str(document["message"])


@dataclass(frozen=True)
class Endpoint:
    """One profile API call against the demo profile, with whatever headers a test adds."""

    name: str
    method: str
    path: str
    query: str = ""

    def call(self, http: HttpClient, query: str = "", **headers: Any) -> HttpResponse:
        url = f"{self.path}?{'&'.join(part for part in (self.query, query) if part)}"
        if self.method == "POST":
            return http.post(
                url, data=b"", content_type="application/x-www-form-urlencoded", **headers
            )
        return http.get(url, **headers)


ENDPOINTS = [
    Endpoint("update GET", "GET", "/m2/demo/profile/update", f"mboxPC={PC_ID}&profile.city=Paris"),
    Endpoint(
        "update POST", "POST", "/m2/demo/profile/update", f"mboxPC={PC_ID}&profile.city=Paris"
    ),
    Endpoint("fetch by pcId", "GET", f"/rest/v1/profiles/{PC_ID}", "client=demo"),
    Endpoint(
        "fetch by thirdPartyId",
        "GET",
        f"/rest/v1/profiles/thirdPartyId/{THIRD_PARTY_ID}",
        "client=demo",
    ),
]
