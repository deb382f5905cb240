"""Every JSON endpoint answers the way the served OpenAPI document says, whatever it is sent.

schemathesis reads ``/api/openapi.json`` from the application itself and calls each
operation in process (WSGI) with generated requests, with authentication on and off: no
answer is a 5xx, and every status, content type, header and body is one the document
describes. ``make test`` runs a few examples per operation (hypothesis profile ``ci``);
``make fuzz`` runs many.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from profiles.api.batch_views import OPENAPI_DOCUMENT
from profiles.models import Client, Role
from targetadmin.wsgi import application
from tests.profile_api import a_profile, issue_token, require_authentication
from tests.support import basic_authorization, member

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


DOCUMENT = json.loads(OPENAPI_DOCUMENT.read_text())
OPERATIONS = [
    (path, method.upper())
    for path, operations in DOCUMENT["paths"].items()
    for method in operations
    if method != "parameters"
]


def cases(path: str, method: str) -> st.SearchStrategy[Case]:
    """Requests for one operation of the document the application serves.

    Valid and invalid ones (schemathesis' positive and negative modes), half of them aimed
    at the existing client ``demo`` so that they get past the client look-up.
    """
    served = schemathesis.openapi.from_wsgi("/api/openapi.json", application)
    operation = served[path][method]
    at_demo: dict[str, Any] = (
        {"query": {"client": "demo"}}
        if path.startswith("/rest/")
        else {"path_parameters": {"client": "demo"}}
    )
    return st.one_of(
        [
            operation.as_strategy(mode, **fixed)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
            for fixed in (at_demo, {})
        ]
    )


@pytest.fixture(autouse=True)
def _connection_kept_open(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep the test's database connection across the calls, as Django's test client does.

    The calls go straight to the WSGI application, whose request signals (and the fast lane,
    which does what they do) close the database connection after each request; the test's
    transaction lives on that connection.
    """
    monkeypatch.setattr(application, "keep_connections", lambda: None)
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def profiles_open(demo: Client, settings: Any) -> Client:
    """demo with one profile and Require Authentication off; bulk calls are not rate limited."""
    settings.BULK_SUBMISSIONS_PER_MINUTE = 10**6
    a_profile(demo, tier="gold")
    return demo


def answers_as_documented(path: str, method: str, headers: dict[str, str]) -> None:
    @hypothesis.settings(max_examples=max(5, hypothesis.settings.default.max_examples // 2))
    @given(case=cases(path, method))
    def check(case: Case) -> None:
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)

    check()


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_it_answers_every_operation_as_documented_with_authentication_off(
    path: str, method: str, profiles_open: Client
) -> None:
    """The profile APIs are open; the management API answers 401 to a caller without Basic."""
    answers_as_documented(path, method, {})


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_it_answers_every_operation_as_documented_with_authentication_on(
    path: str, method: str, profiles_open: Client
) -> None:
    """The profile APIs get the client's token; the management API gets alice, an Approver."""
    member(profiles_open, "alice", Role.APPROVER)
    require_authentication(profiles_open)
    token = issue_token(profiles_open)
    management = "/target/" in path
    answers_as_documented(
        path,
        method,
        {"Authorization": basic_authorization("alice") if management else f"Bearer {token}"},
    )
