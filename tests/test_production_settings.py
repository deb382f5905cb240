"""The production settings pass Django's deployment check, run as an operator would."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The variables docs/operations.md#running-in-production tells an operator to set.
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "targetadmin.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://targetadmin.example.com",
    "HTTPS_ONLY": "true",
    "TRUST_X_FORWARDED_PROTO": "true",
    "TRUSTED_PROXIES": "127.0.0.1/32,10.0.0.0/8",
    "EMAIL_BACKEND": "smtp",
    "EMAIL_HOST": "smtp.example.com",
    "BATCH_STORAGE": "database",
}


def manage(*arguments: str, **overrides: str) -> subprocess.CompletedProcess[str]:
    """``manage.py arguments`` in a new process, with the production variables."""
    return subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=os.environ | PRODUCTION | overrides,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def deploy_check(**overrides: str) -> subprocess.CompletedProcess[str]:
    return manage("check", "--deploy", "--fail-level", "WARNING", **overrides)


def test_it_passes_the_deploy_check_with_the_production_variables() -> None:
    check = deploy_check()
    assert check.returncode == 0, check.stderr
    assert "no issues" in check.stdout


def test_it_fails_the_deploy_check_when_https_is_not_enforced() -> None:
    check = deploy_check(HTTPS_ONLY="false")
    assert check.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in check.stderr


def test_it_fails_the_deploy_check_with_debug_on() -> None:
    check = deploy_check(DEBUG="true")
    assert check.returncode != 0
    assert "security.W018" in check.stderr


def test_it_fails_the_deploy_check_when_e_mail_would_only_be_printed() -> None:
    check = deploy_check(EMAIL_BACKEND="console")
    assert check.returncode != 0
    assert "mail.E001" in check.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="procfs")
def test_it_fails_the_deploy_check_while_var_stays_open_to_others(tmp_path: Path) -> None:
    # /proc/self: a directory no process may change the mode of, as a var/ of someone else's.
    check = deploy_check(
        TARGETADMIN_VAR_DIR="/proc/self",
        DATABASE_URL=f"sqlite:///{tmp_path / 'targetadmin.sqlite3'}",
    )
    assert check.returncode != 0
    assert "targetadmin.E001" in check.stderr


def batch_storage_class(**overrides: str) -> subprocess.CompletedProcess[str]:
    code = "from profiles.ingest.storage import batch_files; print(type(batch_files()).__name__)"
    return manage("shell", "-v", "0", "-c", code, **overrides)


def test_batch_storage_picks_where_batch_files_wait() -> None:
    database = batch_storage_class()
    assert database.stdout.strip() == "DatabaseStorage", database.stderr
    s3 = batch_storage_class(BATCH_STORAGE="s3", BATCH_S3_BUCKET="batches")
    assert s3.stdout.strip() == "ObjectStorage", s3.stderr
    assert batch_storage_class(BATCH_STORAGE="directory").stdout.strip() == "DirectoryStorage"


def test_it_refuses_a_batch_storage_it_does_not_know() -> None:
    refused = deploy_check(BATCH_STORAGE="nfs")
    assert refused.returncode != 0
    assert "BATCH_STORAGE must be directory, database or s3, not 'nfs'" in refused.stderr


def test_it_refuses_s3_batch_storage_without_a_bucket() -> None:
    refused = deploy_check(BATCH_STORAGE="s3")
    assert refused.returncode != 0
    assert "BATCH_STORAGE=s3 needs BATCH_S3_BUCKET" in refused.stderr
