"""The repository explains itself: its docs match the code, and the code's references resolve."""

from __future__ import annotations

import re
from pathlib import Path

from profiles.api.envelopes import STATUS
from profiles.rules.errors import ADOBE_SPELLING, ROW_CODES, ErrorCode

ROOT = Path(__file__).resolve().parent.parent
DOC_REFERENCE = re.compile(r"docs/([\w-]+\.md)(?:#([\w-]+))?")
CODE_FOLDERS = (
    "profiles",
    "targetadmin",
    "bench",
    "templates",
    "static",
    ".ci",
    "bin",
    "tests",
    "uploader",
)


def _error_code_rows() -> dict[str, tuple[str, str]]:
    """``code -> (Adobe spelling, status)`` from docs/api.md's error-code table."""
    text = (ROOT / "docs" / "api.md").read_text()
    table = text.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("code", "---"):
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def test_the_error_code_table_lists_exactly_the_codes_of_the_enum() -> None:
    assert set(_error_code_rows()) == {code.value for code in ErrorCode}


def test_the_error_code_table_gives_each_code_its_status_and_adobe_spelling() -> None:
    for name, (spelling, status) in _error_code_rows().items():
        code = ErrorCode(name)
        expected_status = "row" if code in ROW_CODES else str(STATUS[code])
        assert status.startswith(expected_status), name
        assert spelling in (ADOBE_SPELLING.get(code, "—"), code.value), name


def _anchors(document: Path) -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", document.read_text(), flags=re.MULTILINE)
    return {
        re.sub(r"[^\w\- ]", "", heading).strip().lower().replace(" ", "-") for heading in headings
    }


def _code_files() -> list[Path]:
    found = [ROOT / name for name in ("Makefile", "gunicorn.conf.py", ".env.example")]
    for folder in CODE_FOLDERS:
        found += [
            p for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts
        ]
    return [p for p in found if p.suffix not in (".png", ".woff2", ".ico")]


def test_every_reference_in_code_to_the_docs_names_a_file_and_heading_that_exist() -> None:
    broken = []
    for path in _code_files():
        for document, anchor in DOC_REFERENCE.findall(path.read_text(errors="replace")):
            target = ROOT / "docs" / document
            if not target.is_file() or (anchor and anchor not in _anchors(target)):
                broken.append(f"{path.relative_to(ROOT)}: docs/{document}#{anchor}")
    assert not broken


def test_no_code_cites_a_contract_that_is_not_in_the_repository() -> None:
    citing = [
        str(path.relative_to(ROOT))
        for path in _code_files()
        # The class [S] keeps this line from matching its own pattern.
        if re.search(r"\b[S]PEC\b", path.read_text(errors="replace"))
    ]
    assert not citing
