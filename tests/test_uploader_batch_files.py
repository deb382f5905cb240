"""targetadmin-upload writes batch files the server reads back exactly (docs/uploader.md).

These check the tool's encoding and splitting against the server's own reader and upload
checks, in process; tests/test_uploader.py runs the tool against a live server.
"""

from __future__ import annotations

import ast
import csv
import sys
from pathlib import Path

import pytest
from django.conf import settings
from hypothesis import given
from hypothesis import strategies as st

from profiles.ingest.batchfile import BatchFileWriter, parse_header, parse_line, read_chunks
from profiles.ingest.storage import DirectoryStorage
from targetadmin_upload import batchfile
from targetadmin_upload.parts import Part, split
from targetadmin_upload.sources import Failure, Record, open_source

PACKAGE = Path(batchfile.__file__).resolve().parent
BLANKS = " \t"

names = st.text(min_size=1, max_size=12).filter(
    lambda name: (
        name.isprintable() and name.strip(BLANKS) == name and not name.startswith("profile.")
    )
)
values = st.text(max_size=40)


@given(
    header=st.lists(names, min_size=1, max_size=5, unique=True),
    rows=st.lists(st.lists(values, min_size=1, max_size=6), max_size=5),
)
def test_the_server_reads_every_encoded_value_back_exactly_but_for_blanks_around_it(
    header: list[str], rows: list[list[str]]
) -> None:
    parsed_header = parse_header(batchfile.encode_header("thirdPartyId", header)[6:].rstrip())
    assert list(parsed_header.names) == header
    for cells in rows:
        cells = (cells + [""] * len(header))[: len(header) + 1]
        line = batchfile.encode_line(cells).decode("ascii")
        assert line.count("\n") == 1
        row = parse_line(parsed_header, 2, line.rstrip("\n"))
        assert row.profile_id == cells[0].strip(BLANKS)
        # The server trims blanks around every cell once decoded (docs/api.md#the-file).
        for name, value in zip(header, cells[1:], strict=True):
            assert row.attributes.get(name, "") == value.strip(BLANKS)


def test_every_character_but_the_unreserved_ones_is_percent_encoded() -> None:
    assert batchfile.encode_cell("a,b%c+d e") == "a%2Cb%25c%2Bd%20e"
    assert batchfile.encode_cell('"ü€😀\n') == "%22%C3%BC%E2%82%AC%F0%9F%98%80%0A"
    assert batchfile.encode_cell("Az09-._~") == "Az09-._~"
    assert batchfile.encode_line(["u-1", "x", "", ""]) == b"u-1,x\n"


def test_the_tools_default_limits_are_the_servers() -> None:
    assert batchfile.MAX_ROWS == settings.BATCH_MAX_ROWS
    assert batchfile.MAX_BYTES == settings.BATCH_MAX_BYTES


def _csv(tmp_path: Path, rows: list[list[str]]) -> Path:
    path = tmp_path / "input.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerows([["thirdPartyId", "a", "b"], *rows])
    return path


def _key(part: Part, digest: str) -> str:
    return digest


@given(
    rows=st.lists(st.lists(values, min_size=2, max_size=3), min_size=1, max_size=30),
    max_rows=st.integers(1, 8),
    max_bytes=st.integers(200, 600),
)
def test_each_part_passes_the_servers_upload_checks_under_the_same_limits(
    tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]], max_rows: int, max_bytes: int
) -> None:
    tmp_path = tmp_path_factory.mktemp("parts")
    rows = [[f"u-{i}", *cells[1:]] for i, cells in enumerate(rows)]
    source = open_source(_csv(tmp_path, rows), None, None)
    applied: dict[str, dict[str, str]] = {}
    too_long: set[str] = set()
    for part in split(source, max_rows=max_rows, max_bytes=max_bytes, key_of=_key):
        too_long |= {failure.key for failure in part.failures}
        if not part.rows:
            continue
        writer = BatchFileWriter(
            DirectoryStorage(location=tmp_path),
            f"{part.number}.txt",
            max_bytes=max_bytes,
            max_rows=max_rows,
        )
        for chunk in part.body():
            writer.write(chunk)
        stored = writer.finish()  # raises FileRefused past either limit
        assert stored.rows == part.rows
        with (tmp_path / stored.name).open("rb") as handle:
            for chunk in read_chunks(
                handle, stored.header, offset=stored.data_offset, position=2, size=100
            ):
                assert not chunk.failures
                applied |= {row.profile_id: row.attributes for row in chunk.rows}
        part.discard_rows()
    for key, *cells in rows:
        if key in too_long:
            header = batchfile.encode_header("thirdPartyId", ["a", "b"])
            assert len(header) + len(batchfile.encode_line([key, *cells])) >= max_bytes
            continue
        expected = {name: value.strip(BLANKS) for name, value in zip("ab", cells, strict=False)}
        assert {name: applied[key].get(name, "") for name in expected} == expected


def test_a_row_that_alone_passes_the_byte_limit_fails_by_itself(tmp_path: Path) -> None:
    source = open_source(
        _csv(tmp_path, [["u-1", "x"], ["u-2", "y" * 500], ["u-3", "z"]]), None, None
    )
    (part,) = split(source, max_rows=10, max_bytes=300, key_of=_key)
    assert part.rows == 2
    assert [(f.line, f.key) for f in part.failures] == [(3, "u-2")]


def test_failed_lines_map_back_to_the_input_across_quoted_line_breaks_and_blank_lines(
    tmp_path: Path,
) -> None:
    path = tmp_path / "input.csv"
    path.write_text('thirdPartyId,a\nu-1,"one\ntwo"\n\nu-2,x\nu-3,x,extra\nu-4,"a\n\nb"\nu-5,y\n')
    parts = list(split(open_source(path, None, None), max_rows=2, max_bytes=10_000, key_of=_key))
    assert [(p.rows, p.first_line, p.last_line) for p in parts] == [(2, 2, 6), (2, 7, 10)]
    first, second = parts
    assert [first.lines[2], first.lines[3]] == [2, 5]
    assert [(f.line, f.key, f.reason) for f in first.failures] == [
        (6, "u-3", "3 cells where the header has 2")
    ]
    assert [second.lines[2], second.lines[3]] == [7, 10]


def test_a_json_lines_record_may_name_new_attributes_and_must_keep_the_files_key_kind(
    tmp_path: Path,
) -> None:
    path = tmp_path / "input.jsonl"
    path.write_text(
        '{"thirdPartyId": "u-1", "attributes": {"a": "1"}}\n'
        "\n"
        '{"thirdPartyId": 2, "attributes": {"b": 2.5, "a": null}}\n'
        '{"pcId": "p-1", "attributes": {"a": "1"}}\n'
        "not json\n"
        '{"thirdPartyId": "u-3", "attributes": {"a": ["x"]}}\n'
    )
    source = open_source(path, None, None)
    (part,) = split(source, max_rows=10, max_bytes=10_000, key_of=_key)
    assert part.header == b"batch=thirdPartyId,a,b\n"
    assert b"".join(part.body()) == b"batch=thirdPartyId,a,b\nu-1,1\n2,,2.5\n"
    assert [(f.line, f.key, f.reason[:30]) for f in part.failures] == [
        (4, "p-1", "has a pcId but this upload is "),
        (5, "", "not valid JSON: Expecting valu"),
        (6, "u-3", "attribute 'a' must be a string"),
    ]


def test_the_uploader_imports_nothing_but_the_standard_library_requests_and_rich() -> None:
    allowed = set(sys.stdlib_module_names) | {"requests", "rich", "targetadmin_upload"}
    imported = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    assert imported <= allowed, imported - allowed


def test_a_csv_with_a_byte_order_mark_and_any_case_key_column_is_read(tmp_path: Path) -> None:
    path = tmp_path / "input.csv"
    path.write_bytes(b"\xef\xbb\xbfTHIRDPARTYID, city \r\nu-1,Paris\r\n")
    source = open_source(path, None, None)
    assert (source.kind, source.names) == ("thirdPartyId", ["city"])
    assert list(source) == [Record(2, ["u-1", "Paris"])]


def test_json_lines_numbers_are_sent_as_written_and_nan_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "numbers.jsonl"
    path.write_text(
        '{"thirdPartyId": 7, "attributes": {"e": 1e2, "tenth": 0.10, "big": 12345678901234567890.5}}\n'
        '{"thirdPartyId": "u-2", "attributes": {"e": NaN}}\n'
        '{"thirdPartyId": "u-3", "attributes": {"e": -Infinity, "tenth": true}}\n'
    )
    source = open_source(path, None, None)

    assert list(source) == [
        Record(1, ["7", "1e2", "0.10", "12345678901234567890.5"]),
        Failure(2, "", "not valid JSON: NaN is not a JSON number"),
        Failure(3, "", "not valid JSON: -Infinity is not a JSON number"),
    ]
