"""Helpers shared by the bulk ingestion tests: submitting batch files and reading answers."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

from django.http import HttpResponse
from django.test import Client as HttpClient

from profiles.ingest.storage import batch_files
from profiles.models import Client, Profile

FORM = "application/x-www-form-urlencoded"


def submit(
    http: HttpClient,
    body: bytes | str,
    *,
    version: str = "v2",
    client: str = "demo",
    **headers: Any,
) -> HttpResponse:
    path = "/m2/{}/v2/profile/batchUpdate" if version == "v2" else "/m2/{}/profile/batchUpdate"
    data = body.encode() if isinstance(body, str) else body
    return http.post(path.format(client), data=data, content_type=FORM, **headers)


def stored_files() -> list[str]:
    """The names of the batch files the storage ``batches`` holds."""
    try:
        return batch_files().listdir("")[1]
    except FileNotFoundError:  # a directory not made yet
        return []


def xml_root(response: HttpResponse) -> ElementTree.Element:
    assert response["Content-Type"].startswith("application/xml"), response.content
    content = b"".join(response.streaming_content) if response.streaming else response.content  # type: ignore[attr-defined]
    root = ElementTree.fromstring(content)  # noqa: S314 (our own response)
    assert root.tag == "response"
    return root


def xml_body(response: HttpResponse) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)  # type: ignore[attr-defined]
    return response.content


def batch_id_of(response: HttpResponse) -> str:
    assert response.status_code == 200, response.content
    url = xml_root(response).findtext("batchStatus") or ""
    return parse_qs(urlsplit(url).query)["batchId"][0]


def status(http: HttpClient, batch_id: str, *, details: bool = True) -> dict[str, Any]:
    query = f"batchId={batch_id}" + ("&showDetails=true" if details else "")
    response = http.get(f"/m2/demo/profile/batchStatus?{query}")
    assert response.status_code == 200, xml_body(response)
    root = xml_root(response)
    fields: dict[str, Any] = {
        child.tag: child.text or "" for child in root if child.tag != "profile"
    }
    fields["profiles"] = [
        {field.tag: field.text or "" for field in profile} for profile in root.iter("profile")
    ]
    return fields


def refusal(response: HttpResponse) -> str:
    root = xml_root(response)
    assert root.findtext("success") == "false"
    return root.findtext("message") or ""


def values(client: Client, **key: str) -> dict[str, str]:
    profile = Profile.objects.get(client=client, **key)
    return {name: entry["value"] for name, entry in profile.attributes.items()}
