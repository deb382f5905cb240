"""The repository explains itself: its docs match the code, and the code's references resolve."""

from __future__ import annotations

import ast
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


# The configuration: the variables the code reads, .env.example and docs/operations.md's table

ENV_EXAMPLE_LINE = re.compile(r"^#? ?([A-Z][A-Z0-9_]*)=", flags=re.MULTILINE)


def _variable_read(node: ast.AST) -> str | None:
    """The variable a settings helper (``env_int("NAME", …)``), ``os.environ.get("NAME")``,
    ``os.getenv("NAME")`` or ``os.environ["NAME"]`` reads, if ``node`` is one of those."""
    if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
        key = node.slice
    elif isinstance(node, ast.Call) and node.args:
        function = ast.unparse(node.func)
        if not (
            function.split(".")[-1].startswith("env_")
            or function in ("os.environ.get", "os.getenv")
        ):
            return None
        key = node.args[0]
    else:
        return None
    return key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else None


def _variables_the_code_reads() -> set[str]:
    files = [ROOT / "gunicorn.conf.py", *(ROOT / "targetadmin").rglob("*.py")]
    files += [p for p in (ROOT / "profiles").rglob("*.py") if "migrations" not in p.parts]
    return {
        name
        for path in files
        for node in ast.walk(ast.parse(path.read_text()))
        if (name := _variable_read(node))
    }


def _configuration_table() -> set[str]:
    """The variables in the first column of docs/operations.md#configuration's table."""
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for cell in rows for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", cell)}


def test_the_code_reads_variables_from_the_settings_gunicorn_and_commands() -> None:
    read = _variables_the_code_reads()
    # One of each way of reading, so a scan that stopped finding them fails here.
    assert {"DEBUG", "SECRET_KEY", "TOKEN_ENCRYPTION_KEYS", "GUNICORN_THREADS"} <= read
    assert "DEMO_PASSWORD" in read  # profiles/management/commands/seed_demo.py


def test_env_example_names_exactly_the_variables_the_code_reads() -> None:
    listed = set(ENV_EXAMPLE_LINE.findall((ROOT / ".env.example").read_text()))
    read = _variables_the_code_reads()
    assert (sorted(read - listed), sorted(listed - read)) == ([], [])


def test_the_configuration_table_names_exactly_the_variables_the_code_reads() -> None:
    documented = _configuration_table()
    read = _variables_the_code_reads()
    assert (sorted(read - documented), sorted(documented - read)) == ([], [])
