"""The Batches pages: recent batches, progress, failed rows, and their CSV download."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client as HttpClient

from profiles.ingest.batches import Batch
from profiles.models import Client, Role
from targetadmin_upload.spreadsheet import spreadsheet_safe
from tests.batches import batch_id_of, submit
from tests.conftest import member
from tests.support import signed_in

BODY = 'batch=pcId,a\np1,ok\n=HYPERLINK("http://evil"),x,y\n+p3,1,2\n'


@pytest.fixture
def batch_id(demo: Client, client: HttpClient) -> str:
    return batch_id_of(submit(client, BODY))


def test_it_lists_recent_batches_with_status_progress_and_counts(
    alice: User, batch_id: str
) -> None:
    response = signed_in(alice).get("/clients/demo/batches/")
    assert response.status_code == 200
    page = response.content.decode()
    assert batch_id in page
    assert "complete" in page
    assert '<progress class="batch-progress" max="3" value="3"' in page
    assert "refresh.js" not in page  # nothing is changing any more


def test_it_shows_batches_to_every_member_and_hides_them_from_strangers(
    demo: Client, bob: User, charlie: User, batch_id: str, client: HttpClient
) -> None:
    observer = member(demo, "olivia", Role.OBSERVER)
    for user in (bob, observer):
        assert signed_in(user).get("/clients/demo/batches/").status_code == 200
        assert signed_in(user).get(f"/clients/demo/batches/{batch_id}/").status_code == 200
    stranger = signed_in(charlie)
    for path in ("", f"{batch_id}/", f"{batch_id}/failures.csv"):
        assert stranger.get(f"/clients/demo/batches/{path}").status_code == 404
    anonymous = client.get("/clients/demo/batches/")
    assert anonymous.status_code == 302
    assert "login" in anonymous["Location"]


def test_it_refreshes_while_a_batch_is_incomplete(
    alice: User, demo: Client, client: HttpClient, settings: Any
) -> None:
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    batch_id = batch_id_of(submit(client, BODY))
    http = signed_in(alice)
    listing = http.get("/clients/demo/batches/").content.decode()
    assert 'data-refresh-seconds="3"' in listing
    assert '<progress class="batch-progress" max="3" value="0"' in listing
    detail = http.get(f"/clients/demo/batches/{batch_id}/").content.decode()
    assert 'data-refresh-seconds="3"' in detail
    assert "No failed rows so far." in detail


def test_it_shows_failed_rows_with_line_numbers_and_reasons(alice: User, batch_id: str) -> None:
    page = signed_in(alice).get(f"/clients/demo/batches/{batch_id}/").content.decode()
    assert "<td>3</td>" in page
    assert "3 cells where the header has 2 columns" in page
    assert "failures.csv" in page


def test_it_downloads_failed_rows_as_csv_safe_for_spreadsheets(alice: User, batch_id: str) -> None:
    response = signed_in(alice).get(f"/clients/demo/batches/{batch_id}/failures.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{batch_id}-failures.csv"'
    text = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["line", "id", "code", "message"]
    assert rows[1][0] == "3"
    assert rows[1][1] == '\'=HYPERLINK("http://evil")'
    assert rows[2][:3] == ["4", "'+p3", "wrong_cell_count"]
    assert len(rows) == 3
    assert Batch.objects.get(pk=batch_id).failed_updates == 2


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain", "plain"),
        ("", ""),
    ],
)
def test_it_quotes_cells_a_spreadsheet_would_run(cell: str, safe: str) -> None:
    assert spreadsheet_safe(cell) == safe
