"""Batch file uploads (docs/api.md#batch-file-update) and batch status (docs/api.md#batch-status)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client as HttpClient

from profiles.ingest.batches import Batch
from profiles.models import Client, Profile
from tests.batches import (
    batch_id_of,
    refusal,
    status,
    stored_files,
    submit,
    values,
    xml_body,
)
from tests.profile_api import issue_token, require_authentication

# The example file of docs/api.md#the-file.
DOCUMENTED_SAMPLE = "batch=pcId,param1,param2\n123,value1\n124,,value2\n"


def test_it_applies_the_spec_sample_verbatim(demo: Client, client: HttpClient) -> None:
    batch_id = batch_id_of(submit(client, DOCUMENTED_SAMPLE))
    assert values(demo, pc_id="123") == {"param1": "value1"}
    assert values(demo, pc_id="124") == {"param2": "value2"}
    assert status(client, batch_id) == {
        "batchId": batch_id,
        "status": "complete",
        "batchSize": "2",
        "consumedCount": "2",
        "successfulUpdates": "2",
        "profilesNotFound": "0",
        "failedUpdates": "0",
        "profiles": [],
    }


def test_it_answers_the_exact_submit_xml_with_a_status_url(
    demo: Client, client: HttpClient
) -> None:
    response = submit(client, DOCUMENTED_SAMPLE)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml; charset=utf-8"
    batch_id = Batch.objects.get().pk
    assert re.fullmatch(r"demo-\d{13}-\d{8}", batch_id)
    assert response.content.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?>\n<response><success>true</success>'
        f"<batchStatus>http://testserver/m2/demo/profile/batchStatus?batchId={batch_id}"
        "</batchStatus><message>Batch submitted for processing</message></response>"
    )


def test_it_answers_the_exact_status_xml_without_and_with_details(
    demo: Client, client: HttpClient
) -> None:
    batch_id = batch_id_of(submit(client, "batch=pcId,a\np1,x\np2," + "v" * 257 + "\n"))
    plain = client.get(f"/m2/demo/profile/batchStatus?batchId={batch_id}")
    assert plain.content.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?>\n<response>'
        f"<batchId>{batch_id}</batchId><status>complete</status><batchSize>2</batchSize>"
        "</response>"
    )
    detailed = client.get(f"/m2/demo/profile/batchStatus?batchId={batch_id}&showDetails=true")
    assert xml_body(detailed).decode() == (
        '<?xml version="1.0" encoding="UTF-8"?>\n<response>'
        f"<batchId>{batch_id}</batchId><status>complete</status><batchSize>2</batchSize>"
        "<consumedCount>2</consumedCount><successfulUpdates>1</successfulUpdates>"
        "<profilesNotFound>0</profilesNotFound><failedUpdates>1</failedUpdates>"
        "<profile><id>p2</id><status>failed</status>"
        "<message>Line 3: value of &apos;a&apos; is longer than 256 characters</message>"
        "</profile></response>".replace("&apos;", "'")
    )


def test_it_answers_status_on_the_older_v2_path_and_ignores_extra_parameters(
    demo: Client, client: HttpClient
) -> None:
    batch_id = batch_id_of(submit(client, DOCUMENTED_SAMPLE))
    response = client.get(
        f"/m2/demo/v2/profile/batchStatus?batchId={batch_id}&m2Node=00&showDetails=true"
    )
    assert response.status_code == 200
    assert b"<successfulUpdates>2</successfulUpdates>" in xml_body(response)


def test_it_trims_blanks_after_commas_in_header_and_rows(demo: Client, client: HttpClient) -> None:
    submit(client, "batch=pcId, city , tier\n p1 , Paris ,\tgold\n")
    assert values(demo, pc_id="p1") == {"city": "Paris", "tier": "gold"}


def test_it_decodes_each_cell_once_after_splitting(demo: Client, client: HttpClient) -> None:
    body = "batch=thirdPartyId,note,city,plus,my%20name\nu-1,a%2Cb,New+York,1%2B1,one%0Atwo\n"
    submit(client, body)
    assert values(demo, third_party_id="u-1") == {
        "note": "a,b",
        "city": "New York",
        "plus": "1+1",
        "my name": "one\ntwo",
    }


def test_it_accepts_crlf_line_ends(demo: Client, client: HttpClient) -> None:
    batch_id = batch_id_of(submit(client, "batch=pcId,a,b\r\np1,x,y\r\np2,z,\r\n"))
    assert values(demo, pc_id="p1") == {"a": "x", "b": "y"}
    assert values(demo, pc_id="p2") == {"a": "z"}
    assert status(client, batch_id)["batchSize"] == "2"


def test_it_accepts_utf8_values_and_a_last_line_without_newline(
    demo: Client, client: HttpClient
) -> None:
    submit(client, "batch=pcId,city\np1,São Paulo\np2,S%C3%A3o+Paulo")
    assert values(demo, pc_id="p1") == {"city": "São Paulo"}
    assert values(demo, pc_id="p2") == {"city": "São Paulo"}


def test_it_ignores_empty_values_and_never_clears_a_stored_one(
    demo: Client, client: HttpClient
) -> None:
    submit(client, "batch=pcId,a,b\np1,1,2\n")
    batch_id = batch_id_of(submit(client, "batch=pcId,a,b\np1,,3\np2,,\n"))
    assert values(demo, pc_id="p1") == {"a": "1", "b": "3"}
    assert not Profile.objects.filter(pc_id="p2").exists()
    assert status(client, batch_id)["successfulUpdates"] == "2"


def test_it_skips_a_batch_of_only_empty_values(demo: Client, client: HttpClient) -> None:
    batch_id = batch_id_of(submit(client, "batch=pcId,a,b\np1,,\np2\n"))
    assert not Profile.objects.exists()
    assert status(client, batch_id)["status"] == "complete"


def test_it_completes_a_batch_with_a_header_and_no_rows(demo: Client, client: HttpClient) -> None:
    batch_id = batch_id_of(submit(client, "batch=pcId,a\n\n"))
    assert status(client, batch_id) | {"profiles": []} == {
        "batchId": batch_id,
        "status": "complete",
        "batchSize": "0",
        "consumedCount": "0",
        "successfulUpdates": "0",
        "profilesNotFound": "0",
        "failedUpdates": "0",
        "profiles": [],
    }


def test_it_updates_only_existing_profiles_in_v1_and_counts_the_rest_not_found(
    demo: Client, client: HttpClient
) -> None:
    submit(client, "batch=thirdPartyId,a\nknown,1\n")
    batch_id = batch_id_of(
        submit(client, "batch=thirdPartyId,a\nknown,2\nunknown,2\n", version="v1")
    )
    assert values(demo, third_party_id="known") == {"a": "2"}
    assert not Profile.objects.filter(third_party_id="unknown").exists()
    fields = status(client, batch_id)
    assert (fields["successfulUpdates"], fields["profilesNotFound"]) == ("1", "1")


def test_it_counts_a_row_of_only_empty_values_not_found_in_v1_when_its_profile_is_missing(
    demo: Client, client: HttpClient
) -> None:
    # As the single update answers 404: v1 updates existing profiles only.
    Profile.objects.create(client=demo, pc_id="known", attributes={})
    body = "batch=pcId,tier\nknown,\nno-such-profile,\nno-such-profile\n"
    fields = status(client, batch_id_of(submit(client, body, version="v1")))
    assert (fields["successfulUpdates"], fields["profilesNotFound"]) == ("1", "2")
    # v2 creates missing profiles, but a row of only empty values creates nothing.
    fields = status(client, batch_id_of(submit(client, body, version="v2")))
    assert (fields["successfulUpdates"], fields["profilesNotFound"]) == ("3", "0")
    assert list(Profile.objects.values_list("pc_id", "attributes")) == [("known", {})]


def test_it_creates_missing_profiles_in_v2_with_target_shaped_pc_ids(
    demo: Client, client: HttpClient
) -> None:
    submit(client, "batch=thirdPartyId,a\nnew-1,1\nnew-2,2\n")
    pc_ids = set(Profile.objects.values_list("pc_id", flat=True))
    assert len(pc_ids) == 2
    assert all(re.fullmatch(r"\d{13}-\d{6}\.\d{2}_\d{2}", pc_id) for pc_id in pc_ids)


def test_it_applies_duplicate_ids_in_file_order(
    demo: Client, client: HttpClient, settings: Any
) -> None:
    settings.BATCH_CHUNK_ROWS = 2  # the duplicates land in different chunks too
    body = "batch=pcId,a,b,c\nu,1,1,\nu,2,,\nother,x,,\nu,,,3\nu,4,,\n"
    batch_id = batch_id_of(submit(client, body))
    assert values(demo, pc_id="u") == {"a": "4", "b": "1", "c": "3"}
    assert status(client, batch_id)["successfulUpdates"] == "5"


def test_it_merges_and_keeps_attributes_not_named(demo: Client, client: HttpClient) -> None:
    submit(client, "batch=pcId,a,b\np1,1,2\n")
    submit(client, "batch=pcId,b,c\np1,20,30\n", version="v1")
    assert values(demo, pc_id="p1") == {"a": "1", "b": "20", "c": "30"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("bad/id,x", "Line 3: thirdPartyId must not contain '+' or '/'"),
        (",x", "Line 3: thirdPartyId is empty"),
        ("u-" + "i" * 300 + ",x", "Line 3: thirdPartyId is longer than 256 characters"),
        ("u-3," + "v" * 257, "Line 3: value of 'a' is longer than 256 characters"),
        ("u-3,x,extra", "Line 3: 3 cells where the header has 2 columns"),
        ("u-3,50%", "Line 3: bad percent-encoding in '50%'"),
        ("u-3,%zz", "Line 3: bad percent-encoding in '%zz'"),
        ("u-3,%C3%28", "Line 3: '%C3%28' does not decode to UTF-8"),
        ("u-3,a%00b", "Line 3: value of 'a' contains a NUL character"),
    ],
)
def test_it_fails_only_the_bad_row_with_its_line_number_and_reason(
    demo: Client, client: HttpClient, line: str, message: str
) -> None:
    batch_id = batch_id_of(submit(client, f"batch=thirdPartyId,a\nu-1,ok\n{line}\nu-4,ok\n"))
    assert values(demo, third_party_id="u-1") == {"a": "ok"}
    assert values(demo, third_party_id="u-4") == {"a": "ok"}
    fields = status(client, batch_id)
    assert (fields["successfulUpdates"], fields["failedUpdates"]) == ("2", "1")
    assert [profile["message"] for profile in fields["profiles"]] == [message]
    assert fields["profiles"][0]["status"] == "failed"


def test_it_echoes_a_failed_id_with_control_characters_in_status_xml_that_parses(
    demo: Client, client: HttpClient
) -> None:
    # XML 1.0 cannot carry U+0001 even escaped: it is shown as U+FFFD, and the document parses.
    batch_id = batch_id_of(submit(client, "batch=pcId,a\nctl%01id,x\np2,ok\n", version="v1"))
    assert status(client, batch_id)["profiles"] == [
        {
            "id": "ctl\ufffdid",
            "status": "failed",
            "message": "Line 2: pcId contains control characters",
        }
    ]


def test_it_fails_a_row_that_is_not_utf8(demo: Client, client: HttpClient) -> None:
    batch_id = batch_id_of(submit(client, b"batch=pcId,a\np1,\xff\np2,ok\n"))
    fields = status(client, batch_id)
    assert fields["profiles"] == [{"id": "p1", "status": "failed", "message": "Line 2: not UTF-8"}]
    assert values(demo, pc_id="p2") == {"a": "ok"}


def _nothing_changed() -> bool:
    return not Batch.objects.exists() and not Profile.objects.exists() and not stored_files()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "The batch file is empty; it must start with 'batch='."),
        ("pcId,a\np1,x\n", "The batch file must start with 'batch='."),
        ("batch=id,a\np1,x\n", "The batch header must start with pcId or thirdPartyId, not 'id'."),
        (
            "batch=PCID,a\np1,x\n",
            "The batch header must start with pcId or thirdPartyId, not 'PCID'.",
        ),
        ("batch=pcId\np1\n", "The batch header names no attributes."),
        ("batch=pcId,a,a\np1,x,y\n", "The batch header names an attribute twice."),
        (
            "batch=pcId,profile.a\np1,x\n",
            "Bad batch header: attribute name 'profile.a' must not start with 'profile.'.",
        ),
        ("batch=pcId,a,\np1,x,y\n", "Bad batch header: attribute name is empty."),
        ("batch=pcId,%zz\np1,x\n", "The batch header is not valid URL-encoded UTF-8."),
    ],
)
def test_it_refuses_a_bad_file_with_400_and_changes_nothing(
    demo: Client, client: HttpClient, body: str, message: str
) -> None:
    response = submit(client, body)
    assert response.status_code == 400
    assert refusal(response) == message
    assert _nothing_changed()


def test_it_refuses_a_file_of_the_size_limit_with_413(
    demo: Client, client: HttpClient, settings: Any
) -> None:
    settings.BATCH_MAX_BYTES = 1000
    body = "batch=pcId,a\n" + "p1,x\n" * 197  # 13 + 985 = 998 bytes: under the limit
    assert submit(client, body).status_code == 200
    Batch.objects.all().delete()
    Profile.objects.all().delete()
    response = submit(client, body + "p1\n")  # exactly 1000 bytes
    assert response.status_code == 413
    assert refusal(response) == "The batch file must be smaller than 1,000 bytes."
    assert _nothing_changed()


def test_it_refuses_more_rows_than_the_limit_with_413(
    demo: Client, client: HttpClient, settings: Any
) -> None:
    settings.BATCH_MAX_ROWS = 3
    assert submit(client, "batch=pcId,a\np1,x\n\np2,x\np3,x").status_code == 200
    Batch.objects.all().delete()
    Profile.objects.all().delete()
    response = submit(client, "batch=pcId,a\np1,x\np2,x\np3,x\np4,x")
    assert response.status_code == 413
    assert refusal(response) == "The batch file has more than 3 rows."
    assert _nothing_changed()


def test_it_streams_bodies_past_djangos_in_memory_limit(
    demo: Client, client: HttpClient, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024
    rows = "".join(f"p{n},value-{n}\n" for n in range(2000))
    batch_id = batch_id_of(submit(client, "batch=pcId,a\n" + rows))
    assert status(client, batch_id)["successfulUpdates"] == "2000"
    upload = SimpleUploadedFile("batch.txt", ("batch=pcId,b\n" + rows).encode())
    response = client.post("/m2/demo/profile/batchUpdate", {"batch": upload})
    assert status(client, batch_id_of(response))["successfulUpdates"] == "2000"
    assert values(demo, pc_id="p1999") == {"a": "value-1999", "b": "value-1999"}


def test_it_accepts_a_multipart_upload_with_or_without_the_prefix(
    demo: Client, client: HttpClient
) -> None:
    with_prefix = SimpleUploadedFile("b.txt", b"batch=pcId,a\np1,x\n")
    without = SimpleUploadedFile("b.txt", b"pcId,b\np1,y\n")
    for upload in (with_prefix, without):
        response = client.post("/m2/demo/v2/profile/batchUpdate", {"batch": upload})
        assert response.status_code == 200
    assert values(demo, pc_id="p1") == {"a": "x", "b": "y"}


def test_it_accepts_the_batch_as_a_plain_multipart_field(demo: Client, client: HttpClient) -> None:
    response = client.post("/m2/demo/v2/profile/batchUpdate", {"batch": "pcId,a\np1,x\n"})
    assert response.status_code == 200
    assert values(demo, pc_id="p1") == {"a": "x"}


def test_it_refuses_a_multipart_upload_without_a_batch_field(
    demo: Client, client: HttpClient
) -> None:
    response = client.post("/m2/demo/v2/profile/batchUpdate", {"file": "pcId,a\np1,x\n"})
    assert response.status_code == 400
    assert refusal(response) == "The multipart upload has no 'batch' field."


def _multipart(part: bytes, *, closing: bytes = b"\r\n--b--\r\n") -> bytes:
    return b"--b\r\n" + part + closing


BATCH_FIELD = b'Content-Disposition: form-data; name="batch"\r\n\r\npcId,a\np1,x\np2,y'


@pytest.mark.parametrize(
    "part",
    [
        BATCH_FIELD,
        b'Content-Disposition: form-data; name="batch"; filename="b.txt"\r\n\r\npcId,a\np1,x',
    ],
    ids=["field", "file"],
)
def test_it_refuses_a_multipart_body_without_its_closing_boundary_and_changes_nothing(
    demo: Client, client: HttpClient, part: bytes
) -> None:
    # Django's parser alone takes the end of the body for the end of the last part, so a
    # body cut short by anything between client and server would be applied as if whole.
    for closing in (b"", b"\r\n--b", b"\r\n--b-"):
        body = _multipart(part, closing=closing)
        response = client.post(
            "/m2/demo/v2/profile/batchUpdate", body, content_type="multipart/form-data; boundary=b"
        )
        assert response.status_code == 400, closing
        assert refusal(response) == "The multipart upload ended before its closing boundary."
        assert _nothing_changed()


def test_it_ignores_what_follows_a_multipart_closing_boundary(
    demo: Client, client: HttpClient
) -> None:
    # RFC 2046: the epilogue after the closing boundary is to be ignored, parts and all.
    epilogue = b'--b\r\nContent-Disposition: form-data; name="batch"\r\n\r\npcId,a\np3,z\r\n--b--'
    body = _multipart(BATCH_FIELD, closing=b"\r\n--b--\r\n" + epilogue)
    response = client.post(
        "/m2/demo/v2/profile/batchUpdate", body, content_type="multipart/form-data; boundary=b"
    )
    assert status(client, batch_id_of(response))["successfulUpdates"] == "2"
    assert sorted(Profile.objects.values_list("pc_id", flat=True)) == ["p1", "p2"]


def test_it_takes_the_client_from_the_host_on_the_placeholder_path(
    demo: Client, client: HttpClient
) -> None:
    response = client.post(
        "/m2/client/v2/profile/batchUpdate",
        data=DOCUMENTED_SAMPLE.encode(),
        content_type="application/x-www-form-urlencoded",
        headers={"host": "demo.localhost:8000"},
    )
    batch_id = batch_id_of(response)
    assert Batch.objects.get(pk=batch_id).client == demo


def test_it_requires_the_token_when_authentication_is_on(demo: Client, client: HttpClient) -> None:
    require_authentication(demo)
    refused = submit(client, DOCUMENTED_SAMPLE)
    assert refused.status_code == 401
    assert not Batch.objects.exists()
    token = issue_token(demo)
    accepted = submit(client, DOCUMENTED_SAMPLE, headers={"authorization": f"Bearer {token}"})
    batch_id = batch_id_of(accepted)
    assert client.get(f"/m2/demo/profile/batchStatus?batchId={batch_id}").status_code == 401
    with_token = client.get(
        f"/m2/demo/profile/batchStatus?batchId={batch_id}", headers={"access_token": token}
    )
    assert with_token.status_code == 200


def test_it_answers_404_for_an_unknown_batch_or_another_clients_batch(
    demo: Client, other_client: Client, client: HttpClient
) -> None:
    acme_batch = batch_id_of(submit(client, DOCUMENTED_SAMPLE, client="acme"))
    for batch_id in ("demo-1-00000000", acme_batch):
        response = client.get(f"/m2/demo/profile/batchStatus?batchId={batch_id}")
        assert response.status_code == 404
        assert refusal(response) == f"No batch '{batch_id}' for client demo."


def test_it_requires_a_batch_id_for_status(demo: Client, client: HttpClient) -> None:
    response = client.get("/m2/demo/profile/batchStatus")
    assert response.status_code == 400
    assert refusal(response) == "The batchId query parameter is required."


def test_it_refuses_get_on_batch_update_and_unknown_clients(
    demo: Client, client: HttpClient
) -> None:
    assert client.get("/m2/demo/profile/batchUpdate").status_code == 405
    # An unknown client is refused as one requiring a token (docs/api.md#authentication).
    assert submit(client, DOCUMENTED_SAMPLE, client="nobody").status_code == 401
