"""docs/development.md#commit-messages: ``make lint`` fails on a commit subject over 72
characters made since the rule, and passes where it cannot tell (a shallow clone)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / ".ci" / "check-commit-subjects"


def git(repository: Path, *arguments: str) -> str:
    done = subprocess.run(  # noqa: S603 - git, with the tests' own arguments
        ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", *arguments],  # noqa: S607
        cwd=repository,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def commit(repository: Path, subject: str) -> str:
    git(repository, "commit", "--allow-empty", "--quiet", "--message", subject)
    return git(repository, "rev-parse", "HEAD")


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    git(tmp_path, "init", "--quiet")
    return tmp_path


def check(repository: Path, *base: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the repository's own script
        [str(CHECK), *base], cwd=repository, capture_output=True, text=True, check=False
    )


def test_it_passes_subjects_of_72_characters_and_leaves_older_ones_alone(
    repository: Path,
) -> None:
    commit(
        repository,
        "An old subject, from before the rule, that runs on and on well past the 72 marks",
    )
    base = commit(repository, "The rule")
    commit(repository, "x" * 72)
    commit(repository, "Ünïcode counts as characters, not bytes: " + "é" * 31)

    done = check(repository, base)

    assert (done.returncode, done.stdout) == (0, "")


def test_it_fails_on_a_subject_of_73_characters_naming_the_commit(repository: Path) -> None:
    base = commit(repository, "The rule")
    too_long = commit(repository, "y" * 73)
    commit(repository, "A short one after it")

    done = check(repository, base)

    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"{too_long[:7]}: the subject takes 73 characters, more than 72:",
        "    " + "y" * 73,
    ]


def test_it_passes_saying_so_where_the_base_is_not_in_the_clone(repository: Path) -> None:
    commit(repository, "z" * 100)

    done = check(repository, "af7bf9b")

    assert done.returncode == 0
    assert done.stdout == "commit subjects not checked: af7bf9b is not in this clone\n"


def test_make_lint_checks_the_subjects_since_the_rule() -> None:
    assert "\t.ci/check-commit-subjects\n" in (ROOT / "Makefile").read_text()
