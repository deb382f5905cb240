"""Property-based tests of every parser that reads hostile input.

The batch file, the single-update parameters, the JSON bulk body and the token format are
fed arbitrary bytes, invalid UTF-8, huge lines, odd percent-encodings, NULs, BOMs, mixed
newlines and thousands of columns. The rules:

- no input raises anything but the parser's own refusal, and every refusal names its reason;
- a parsed row, re-serialised, parses to the same row;
- an input refused whole changes nothing stored (checked through the HTTP endpoints).

``make test`` runs a few examples of each (hypothesis profile ``ci``); ``make fuzz`` runs
many more (profile ``fuzz``).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from django.http import HttpResponse
from django.test import Client as HttpClient
from django.test import RequestFactory
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from profiles.api import single_update, submissions
from profiles.api.calls import ApiCall
from profiles.api.envelopes import status_of
from profiles.api.gate import presented_tokens
from profiles.ingest import processing
from profiles.ingest.batches import Batch
from profiles.ingest.batchfile import (
    BatchFileWriter,
    FileRefused,
    Header,
    StoredFile,
    parse_line,
    read_chunks,
)
from profiles.ingest.pipeline import Row, RowError, RowFailure
from profiles.ingest.storage import DirectoryStorage
from profiles.models import Client, Profile
from profiles.rules.errors import ProductError
from profiles.rules.limits import MAX_NAME_LENGTH
from profiles.store import KeyKind
from profiles.tokens import secret
from tests.batches import FORM

# Strategies --------------------------------------------------------------------------------

# Characters that stress the format: separators, escapes, blanks, newlines, NUL, a BOM,
# non-ASCII letters and an emoji.
TRICKY = ",%+ \t\r\n\x00\ufeff=;/\\\"'<>&é漢\U0001f600"
# Text that UTF-8 can encode: invalid UTF-8 comes from raw bytes and the odd escapes.
tricky_text = st.text(alphabet=st.sampled_from(TRICKY) | st.characters(codec="utf-8"), max_size=40)
odd_escapes = st.sampled_from(["%", "%2", "%zz", "%C3", "%C3%28", "%FF", "%00", "%2C", "%0A", "%%"])
cell_text = st.lists(tricky_text | odd_escapes, max_size=4).map("".join)
names = st.text(
    alphabet=st.characters(categories=("L", "N", "P", "S"), exclude_characters=","),
    min_size=1,
    max_size=MAX_NAME_LENGTH,
).filter(lambda name: not name.startswith("profile."))
newline = st.sampled_from(["\n", "\r\n", "\r", "\n\n"])


@st.composite
def batch_files(draw: st.DrawFn) -> bytes:
    """A batch file that is mostly well-formed, with hostile cells and line endings."""
    kind = draw(st.sampled_from(["pcId", "thirdPartyId"]))
    header = draw(st.lists(names, min_size=1, max_size=6, unique=True))
    lines = [
        ",".join(draw(st.lists(cell_text, min_size=1, max_size=len(header) + 2)))
        for _ in range(draw(st.integers(0, 6)))
    ]
    text = "batch=" + ",".join([kind, *(quote(name, safe="") for name in header)])
    for line in lines:
        text += draw(newline) + line
    raw = text.encode()
    if draw(st.booleans()):
        raw = draw(st.sampled_from([b"\xef\xbb\xbf", b"", b"\xff\xfe"])) + raw
    if draw(st.booleans()):
        raw += draw(st.binary(max_size=64))
    return raw


bodies = st.one_of(st.binary(max_size=512), batch_files())


def chunks_of(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(raw), *(cut % (len(raw) + 1) for cut in cuts)})
    return [raw[start:end] for start, end in itertools.pairwise(points)]


def store(raw: bytes, cuts: list[int], directory: Path) -> tuple[Header, list[Any], int] | str:
    """Write ``raw`` in pieces through the batch writer; the rows read back, or why refused."""
    writer = BatchFileWriter(
        DirectoryStorage(location=str(directory)), "fuzz.txt", max_bytes=1 << 20, max_rows=1000
    )
    try:
        for piece in chunks_of(raw, cuts):
            writer.write(piece)
        stored: StoredFile | FileRefused = writer.finish()
    except FileRefused as refusal:
        writer.discard()
        stored = refusal
    if isinstance(stored, FileRefused):
        assert status_of(stored) in (400, 413)
        assert stored.message.strip()
        return stored.message
    entries: list[Row | RowFailure] = []
    with (directory / stored.name).open("rb") as handle:
        for chunk in read_chunks(
            handle, stored.header, offset=stored.data_offset, position=2, size=3
        ):
            entries += sorted([*chunk.rows, *chunk.failures], key=position_of)
    (directory / stored.name).unlink()
    return stored.header, entries, stored.rows


def attempt(call: Callable[[], Any], refusal: type[Exception]) -> Any:
    """What ``call`` returns, or the ``refusal`` it raises; anything else propagates."""
    try:
        return call()
    except refusal as error:
        return error


def position_of(entry: Row | RowFailure) -> int:
    return entry.position


def serialise(row: Row) -> str:
    return ",".join(quote(cell, safe="") for cell in [row.profile_id, *row.attributes.values()])


# The batch file ------------------------------------------------------------------------------


@given(raw=bodies, cuts=st.lists(st.integers(0, 4096), max_size=4))
def test_it_reads_any_batch_file_as_rows_and_named_failures_or_refuses_it_with_a_reason(
    raw: bytes, cuts: list[int], tmp_path: Path
) -> None:
    result = store(raw, cuts, tmp_path)
    if isinstance(result, str):
        return
    header, entries, counted = result
    assert counted == len(entries), "batchSize must equal the rows the worker will read"
    for entry in entries:
        if isinstance(entry, RowFailure):
            assert entry.code
            assert entry.message
        else:
            assert set(entry.attributes) <= set(header.names)


@given(raw=batch_files(), cuts=st.lists(st.integers(0, 4096), max_size=4))
def test_it_parses_a_reserialised_row_to_the_same_row(
    raw: bytes, cuts: list[int], tmp_path: Path
) -> None:
    result = store(raw, cuts, tmp_path)
    assume(not isinstance(result, str))
    assert not isinstance(result, str)
    header, entries, _ = result
    for entry in entries:
        if isinstance(entry, Row):
            assert parse_line(header, entry.position, serialise(entry)) == entry


@settings(max_examples=max(3, settings.default.max_examples // 8))
@given(width=st.integers(1000, 3000), value=cell_text)
def test_it_takes_thousands_of_columns_and_huge_lines(
    width: int, value: str, tmp_path: Path
) -> None:
    header = [f"a{number}" for number in range(width)]
    cells = ["p1", *([quote(value, safe="")] * width)]
    raw = ("batch=pcId," + ",".join(header) + "\n" + ",".join(cells) + "\r\n").encode()
    result = store(raw, [len(raw) // 3], tmp_path)
    assert not isinstance(result, str), result
    _, entries, counted = result
    assert counted == 1
    (entry,) = entries
    if isinstance(entry, Row):
        assert len(entry.attributes) == width
        assert parse_line(Header(KeyKind.PC_ID, tuple(header)), 2, serialise(entry)) == entry
    else:
        assert entry.code == "bad_encoding"


@given(line=cell_text)
def test_it_names_the_reason_for_every_malformed_line(line: str) -> None:
    header = Header(KeyKind.THIRD_PARTY_ID, ("a", "b"))
    row = attempt(lambda: parse_line(header, 7, line), RowError)
    if isinstance(row, RowError):
        assert row.code in ("bad_encoding", "wrong_cell_count")
        assert row.message
    else:
        assert row.position == 7
        assert parse_line(header, 7, serialise(row)) == row


# The single update's parameters -------------------------------------------------------------

parameter_names = st.sampled_from(["mboxPC", "mbox3rdPartyId", "profile.a", "profile.", "x"])


@st.composite
def query_strings(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(st.binary(max_size=300))
    pairs = draw(st.lists(st.tuples(parameter_names | tricky_text, cell_text), max_size=5))
    return "&".join(f"{name}={value}" for name, value in pairs).encode()


def parse_single(query: bytes, body: bytes | None = None, content_type: str = FORM) -> Any:
    factory = RequestFactory()
    path = "/m2/demo/profile/update"
    if body is None:
        request = factory.get(path)
    else:
        request = factory.post(path, data=body, content_type=content_type)
    request.META["QUERY_STRING"] = query.decode("latin-1")
    update = attempt(lambda: single_update.parse(ApiCall.of(request)), ProductError)
    if isinstance(update, ProductError):
        assert status_of(update) in (400, 413)
        assert update.message
    return update


@given(query=query_strings())
def test_it_parses_any_query_string_or_names_the_reason(query: bytes) -> None:
    update = parse_single(query)
    if isinstance(update, single_update.SingleUpdate):
        assert update.profile_id
        assert update.attributes


@given(
    body=st.binary(max_size=300) | st.just(b"{") | st.just(b'{"mboxPC": [1]}'),
    content_type=st.sampled_from([FORM, "application/json", "text/plain", "multipart/form-data"]),
)
def test_it_answers_any_post_body_with_an_update_or_a_named_refusal(
    body: bytes, content_type: str, demo: Client, client: HttpClient
) -> None:
    response = client.post("/m2/demo/profile/update", data=body, content_type=content_type)
    assert response.status_code in (400, 404, 413), response.content
    assert b"<message>" in response.content


@given(
    kind=st.sampled_from(["mboxPC", "mbox3rdPartyId"]),
    profile_id=tricky_text.filter(bool),
    attributes=st.dictionaries(names, tricky_text, min_size=1, max_size=4),
)
def test_it_parses_a_reserialised_single_update_to_the_same_update(
    kind: str, profile_id: str, attributes: dict[str, str]
) -> None:
    pairs = {kind: profile_id} | {f"profile.{name}": value for name, value in attributes.items()}
    first = parse_single(urlencode(pairs).encode())
    assert isinstance(first, single_update.SingleUpdate), first
    name = next(n for n, k in single_update.ID_PARAMETERS.items() if k is first.kind)
    again = {name: first.profile_id} | {
        f"profile.{attribute}": value for attribute, value in first.attributes.items()
    }
    assert parse_single(urlencode(again).encode()) == first
    as_json = json.dumps(again).encode()
    assert parse_single(b"", as_json, "application/json") == first


# The JSON bulk body ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | tricky_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky_text, inner, max_size=4),
    max_leaves=12,
)
json_profiles = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {st.sampled_from(["pcId", "thirdPartyId"]): tricky_text},  # type: ignore[dict-item]
        optional={"attributes": st.dictionaries(tricky_text, tricky_text | json_values)},
    ),
)


@given(index=st.integers(0, 10**6), item=json_profiles)
def test_it_turns_any_json_profile_into_a_row_or_a_named_failure(index: int, item: Any) -> None:
    entry = processing.json_entry(index, item)
    if isinstance(entry, RowFailure):
        assert entry.position == index
        assert entry.code
        assert entry.message
        return
    kind, row = entry
    again = processing.json_entry(
        index, json.loads(json.dumps({kind.value: row.profile_id, "attributes": row.attributes}))
    )
    assert again == (kind, row)


@given(
    body=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()),
    content_type=st.sampled_from(["application/json", FORM]),
)
def test_it_reads_any_json_bulk_body_or_names_the_reason(body: bytes, content_type: str) -> None:
    request = RequestFactory().post("/api/v1/clients/demo/profiles/bulk", body, content_type)
    read = attempt(lambda: submissions._profiles(submissions._json_body(request)), ProductError)
    if isinstance(read, ProductError):
        assert status_of(read) in (400, 413, 415)
        assert read.code
        assert read.message
    else:
        assert isinstance(read[0], list)


# The token format ---------------------------------------------------------------------------


@given(candidate=st.text(max_size=80) | st.text(alphabet=secret.ALPHABET + "_", max_size=60))
def test_it_refuses_anything_not_shaped_like_a_token_with_a_reason(candidate: str) -> None:
    checked = attempt(lambda: secret.check_format(candidate), secret.MalformedToken)
    if isinstance(checked, secret.MalformedToken):
        assert str(checked)
    else:
        assert candidate.startswith(secret.PREFIX)
        assert len(candidate) == secret.TOKEN_LENGTH


@given(position=st.integers(0, secret.TOKEN_LENGTH - 1), replacement=st.characters())
def test_it_refuses_every_one_character_change_of_a_real_token(
    position: int, replacement: str
) -> None:
    token = secret.generate()
    assume(token[position] != replacement)
    changed = token[:position] + replacement + token[position + 1 :]
    assert not secret.is_well_formed(changed)


@given(authorization=st.text(max_size=120), legacy=st.text(max_size=120))
def test_it_reads_any_authorization_headers_without_error(authorization: str, legacy: str) -> None:
    request = RequestFactory().get("/", HTTP_AUTHORIZATION=authorization, HTTP_ACCESS_TOKEN=legacy)
    for candidate in presented_tokens(request.META):
        assert candidate == candidate.strip()
        assert candidate


# Refused whole, nothing changes ---------------------------------------------------------------


@pytest.fixture
def unlimited_bulk(settings: Any) -> Any:
    """No bulk rate limit, set once: each override inside an example would nest another."""
    settings.BULK_SUBMISSIONS_PER_MINUTE = 10**6
    return settings


def snapshot() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    profiles = list(
        Profile.objects.order_by("pk").values_list(
            "client_id", "pc_id", "third_party_id", "attributes", "modified_at"
        )
    )
    batches = list(Batch.objects.order_by("pk").values_list("pk", "status", "batch_size"))
    return profiles, batches


def stored_files(batch_dir: Path) -> set[Path]:
    """The uploads stored or being stored; earlier examples' accepted batches stay there."""
    if not batch_dir.exists():
        return set()
    return {path for path in batch_dir.iterdir() if path.suffix in (".txt", ".part")}


def assert_refusal_changed_nothing(
    response: HttpResponse,
    before: Any,
    batch_dir: Path | None = None,
    before_files: set[Path] | None = None,
) -> None:
    if response.status_code < 400:
        return
    assert 400 <= response.status_code < 500, response.content
    assert response.content.strip()
    assert snapshot() == before
    if batch_dir is not None:
        assert stored_files(batch_dir) == (before_files or set())


@given(raw=bodies, version=st.sampled_from(["profile", "v2/profile"]))
def test_it_changes_nothing_for_a_batch_file_refused_whole(
    raw: bytes, version: str, demo: Client, client: HttpClient, unlimited_bulk: Any
) -> None:
    Profile.objects.get_or_create(client=demo, pc_id="p1", defaults={"attributes": {}})
    before = snapshot()
    batch_dir = Path(unlimited_bulk.BATCH_DIR)
    files = stored_files(batch_dir)
    response = client.post(f"/m2/demo/{version}/batchUpdate", data=raw, content_type=FORM)
    assert response.status_code in (200, 400, 413), response.content
    assert_refusal_changed_nothing(response, before, batch_dir, files)


@given(body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_it_changes_nothing_for_a_json_bulk_body_refused_whole(
    body: bytes, demo: Client, client: HttpClient, unlimited_bulk: Any
) -> None:
    before = snapshot()
    response = client.post(
        "/api/v1/clients/demo/profiles/bulk", data=body, content_type="application/json"
    )
    assert response.status_code in (200, 400, 413, 415), response.content
    assert_refusal_changed_nothing(response, before)


@given(query=query_strings())
def test_it_changes_nothing_for_a_single_update_refused(
    query: bytes, demo: Client, client: HttpClient
) -> None:
    Profile.objects.get_or_create(
        client=demo, pc_id="p1", defaults={"third_party_id": "u1", "attributes": {}}
    )
    before = snapshot()
    response = client.generic(
        "GET", "/m2/demo/profile/update", QUERY_STRING=query.decode("latin-1")
    )
    assert response.status_code in (200, 400, 404, 413), response.content
    assert_refusal_changed_nothing(response, before)
