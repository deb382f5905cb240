"""The production settings pass Django's deployment check, run as an operator would."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The variables docs/operations.md#running-in-production tells an operator to set.
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "targetadmin.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://targetadmin.example.com",
    "HTTPS_ONLY": "true",
    "TRUST_X_FORWARDED_PROTO": "true",
    "EMAIL_BACKEND": "smtp",
    "EMAIL_HOST": "smtp.example.com",
}


def deploy_check(**overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=os.environ | PRODUCTION | overrides,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


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
