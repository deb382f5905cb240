"""The bad-input catalogue: every malformed or hostile request, and what it receives.

``CASES`` is the source of truth. ``tests/test_bad_input_catalogue.py`` sends each case to
the application and checks its status and message; ``docs/bad-input.md`` is this module's
output (``python -m tests.bad_input_catalogue > docs/bad-input.md``), and a test fails when
the committed page differs. Placeholders in braces (``{token}``, ``{acme_token}``,
``{revoked_token}``, ``{expired_token}``, ``{acme_batch}``, ``{alice}``, ``{alice_wrong}``)
are filled in by the test with a real token, batch id or Basic credentials.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
UPDATE = "/m2/demo/profile/update"
BATCH_V2 = "/m2/demo/v2/profile/batchUpdate"
STATUS = "/m2/demo/profile/batchStatus"
BULK = "/api/v1/clients/demo/profiles/bulk"
FETCH = "/rest/v1/profiles"
SETTINGS = "/demo/target/clients/settings"
TOKEN = "/demo/target/authentication/token"
ACME_BATCH_ID = "acme-1700000000000-00000001"
MALFORMED_BASIC = "Basic " + base64.b64encode(b"no colon here").decode()


@dataclass(frozen=True)
class Case:
    category: str
    what: str
    method: str
    path: str
    status: int
    message: str  # a fragment of the answer's message, as the response body carries it
    body: bytes = b""
    content_type: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    authentication: bool = False  # demo's "Require Authentication"
    settings: dict[str, Any] = field(default_factory=dict)
    transport: str = "test client"  # or "socket" for cases that need a real connection


CASES: list[Case] = [
    # Wrong methods ------------------------------------------------------------------------
    Case(
        "method",
        "DELETE on the single update",
        "DELETE",
        f"{UPDATE}?mboxPC=p1&profile.a=1",
        405,
        "Method DELETE is not allowed; use GET or POST.",
    ),
    Case(
        "method",
        "GET on a batch upload",
        "GET",
        BATCH_V2,
        405,
        "Method GET is not allowed; use POST.",
    ),
    Case(
        "method",
        "PUT on the JSON bulk endpoint",
        "PUT",
        BULK,
        405,
        "Method PUT is not allowed; use POST.",
    ),
    Case(
        "method",
        "POST on the profile fetch",
        "POST",
        f"{FETCH}/p1?client=demo",
        405,
        "Method POST is not allowed; use GET.",
    ),
    Case(
        "method",
        "DELETE on the management settings",
        "DELETE",
        SETTINGS,
        405,
        "DELETE is not allowed here; use GET or PATCH.",
        headers={"Authorization": "{alice}"},
    ),
    # Wrong content types ------------------------------------------------------------------
    Case(
        "content type",
        "JSON bulk sent as text/plain",
        "POST",
        BULK,
        415,
        "Send the profiles as Content-Type: application/json.",
        b"{}",
        "text/plain",
    ),
    Case(
        "content type",
        "settings PATCH sent as a form",
        "PATCH",
        SETTINGS,
        415,
        "Send the body as application/vnd.adobe.target.v1+json or application/json",
        b"enableProfileApiAuthentication=true",
        FORM,
        {"Authorization": "{alice}"},
    ),
    Case(
        "content type",
        "management call accepting only HTML",
        "GET",
        SETTINGS,
        406,
        "the Accept header allows neither",
        headers={"Authorization": "{alice}", "Accept": "text/html"},
    ),
    Case(
        "content type",
        "multipart single update without a boundary",
        "POST",
        UPDATE,
        400,
        "Malformed request",
        b"mboxPC=p1",
        "multipart/form-data",
    ),
    Case(
        "content type",
        "multipart batch without a 'batch' field",
        "POST",
        BATCH_V2,
        400,
        "The multipart upload has no 'batch' field.",
        b'--b\r\nContent-Disposition: form-data; name="other"\r\n\r\nx\r\n--b--\r\n',
        "multipart/form-data; boundary=b",
    ),
    Case(
        "content type",
        "JSON bulk body that is not UTF-8",
        "POST",
        BULK,
        400,
        "The body is not valid JSON",
        b'{"profiles": "\xff"}',
        JSON,
    ),
    Case(
        "content type",
        "JSON bulk body that is a list",
        "POST",
        BULK,
        400,
        "The body must be a JSON object.",
        b"[]",
        JSON,
    ),
    Case(
        "content type",
        "JSON bulk body nested 100,000 deep",
        "POST",
        BULK,
        400,
        "The body is nested too deeply.",
        b"[" * 100_000,
        JSON,
    ),
    # Oversized bodies and headers ---------------------------------------------------------
    Case(
        "size",
        "batch file over BATCH_MAX_BYTES (1,000 here)",
        "POST",
        BATCH_V2,
        413,
        "The batch file must be smaller than 1,000 bytes.",
        b"batch=pcId,a\n" + b"p1,x\n" * 300,
        FORM,
        settings={"BATCH_MAX_BYTES": 1000},
    ),
    Case(
        "size",
        "batch file over BATCH_MAX_ROWS (2 here)",
        "POST",
        BATCH_V2,
        413,
        "The batch file has more than 2 rows.",
        b"batch=pcId,a\np1,x\np2,x\np3,x\n",
        FORM,
        settings={"BATCH_MAX_ROWS": 2},
    ),
    Case(
        "size",
        "batch header line over 64 KB",
        "POST",
        BATCH_V2,
        400,
        "The batch header line is too long.",
        b"batch=pcId," + b"a" * 70_000,
        FORM,
    ),
    Case(
        "size",
        "batch data line over 1 MB fails that row only (profile_too_large)",
        "POST",
        BATCH_V2,
        200,
        "Batch submitted for processing",
        b"batch=pcId,a\np1," + b"x" * 1_048_576 + b"\np2,ok\n",
        FORM,
    ),
    Case(
        "size",
        "JSON bulk over JSON_BULK_MAX_BYTES (1,000 here)",
        "POST",
        BULK,
        413,
        "The request body must be at most 1,000 bytes",
        b'{"profiles": [' + b'{"pcId": "p1"},' * 100 + b'{"pcId": "p1"}]}',
        JSON,
        settings={"JSON_BULK_MAX_BYTES": 1000},
    ),
    Case(
        "size",
        "single update GET query over 8 KB",
        "GET",
        f"{UPDATE}?mboxPC=p1&profile.a={'x' * 9000}",
        413,
        "The query string exceeds 8192 bytes.",
    ),
    Case(
        "size",
        "single update POST body over 60 KB",
        "POST",
        UPDATE,
        413,
        "The request exceeds 61440 bytes.",
        b"mboxPC=p1&profile.a=" + b"x" * 62_000,
        FORM,
    ),
    Case(
        "size",
        "management body over DATA_UPLOAD_MAX_MEMORY_SIZE (100 here)",
        "PATCH",
        SETTINGS,
        413,
        "The body is too large.",
        b'{"enableProfileApiAuthentication": true, "x": "' + b"x" * 200 + b'"}',
        JSON,
        {"Authorization": "{alice}"},
        settings={"DATA_UPLOAD_MAX_MEMORY_SIZE": 100},
    ),
    Case(
        "size",
        "Idempotency-Key header of 300 characters",
        "POST",
        BULK,
        400,
        "The Idempotency-Key header must be at most 255 printable characters.",
        b'{"profiles": []}',
        JSON,
        {"Idempotency-Key": "k" * 300},
    ),
    Case(
        "size",
        "Authorization header of 10,000 characters",
        "GET",
        f"{FETCH}/p1?client=demo",
        401,
        "The profile authentication token is invalid.",
        headers={"Authorization": "Bearer " + "t" * 10_000},
        authentication=True,
    ),
    Case(
        "size",
        "Content-Length larger than the body, then the connection ends",
        "POST",
        BATCH_V2,
        400,
        "The upload ended after 16 of 1,000 bytes",
        b"batch=pcId,a\np1,",
        FORM,
        {"Content-Length": "1000"},
        transport="socket",
    ),
    Case(
        "size",
        "a slow upload cut off by the server's read timeout",
        "POST",
        BATCH_V2,
        408,
        "The upload was too slow",
        b"batch=pcId,a\n",
        FORM,
        {"Content-Length": "1000"},
        transport="socket",
    ),
    # Bad ids ------------------------------------------------------------------------------
    Case(
        "id",
        "fetch of an unknown pcId",
        "GET",
        f"{FETCH}/nope?client=demo",
        404,
        "No profile found for client demo with mboxPC=nope",
    ),
    Case(
        "id",
        "fetch of a thirdPartyId with a control character",
        "GET",
        f"{FETCH}/thirdPartyId/u%01?client=demo",
        404,
        "No profile found for client demo with third party id=u\\u0001",
    ),
    Case(
        "id",
        "single update naming both ids",
        "GET",
        f"{UPDATE}?mboxPC=p1&mbox3rdPartyId=u1&profile.a=1",
        400,
        "Send either mboxPC or mbox3rdPartyId, not both.",
    ),
    Case(
        "id",
        "single update naming no profile",
        "GET",
        f"{UPDATE}?profile.a=1",
        400,
        "Name the profile with mboxPC or mbox3rdPartyId.",
    ),
    Case(
        "id",
        "single update with no attribute",
        "GET",
        f"{UPDATE}?mboxPC=p1",
        400,
        "No profile.&lt;name&gt;=&lt;value&gt; parameter to update.",
    ),
    Case(
        "id",
        "thirdPartyId holding '/'",
        "GET",
        f"{UPDATE}?mbox3rdPartyId=a/b&profile.a=1",
        400,
        "thirdPartyId must not contain '+' or '/'",
    ),
    Case(
        "id",
        "pcId of 300 characters",
        "GET",
        f"{UPDATE}?mboxPC={'p' * 300}&profile.a=1",
        400,
        "pcId is longer than 256 characters",
    ),
    Case(
        "id",
        "batch status without batchId",
        "GET",
        STATUS,
        400,
        "The batchId query parameter is required.",
    ),
    Case(
        "id",
        "batch status of an unknown batch",
        "GET",
        f"{STATUS}?batchId=demo-1-2",
        404,
        "No batch 'demo-1-2' for client demo.",
    ),
    Case(
        "id",
        "batch id holding a NUL character",
        "GET",
        "/api/v1/clients/demo/batches/a%00b",
        404,
        "No batch 'a",
    ),
    Case(
        "id",
        "JSON bulk profile with both ids",
        "POST",
        BULK,
        200,
        "a profile needs exactly one of thirdPartyId or pcId",
        b'{"profiles": [{"pcId": "p1", "thirdPartyId": "u1"}]}',
        JSON,
    ),
    Case(
        "id",
        "batch row with a bad percent-encoding fails that row only",
        "POST",
        BATCH_V2,
        200,
        "Batch submitted for processing",
        b"batch=pcId,a\np1,%zz\np1,ok\n",
        FORM,
    ),
    # Bad attribute names ------------------------------------------------------------------
    Case(
        "attribute",
        "batch header with a 'profile.' name",
        "POST",
        BATCH_V2,
        400,
        "must not start with 'profile.'",
        b"batch=pcId,profile.a\np1,x\n",
        FORM,
    ),
    Case(
        "attribute",
        "batch header naming an attribute twice",
        "POST",
        BATCH_V2,
        400,
        "The batch header names an attribute twice.",
        b"batch=pcId,a,a\np1,x,y\n",
        FORM,
    ),
    Case(
        "attribute",
        "batch header naming no attribute",
        "POST",
        BATCH_V2,
        400,
        "The batch header names no attributes.",
        b"batch=pcId\np1\n",
        FORM,
    ),
    Case(
        "attribute",
        "batch header not starting with pcId or thirdPartyId",
        "POST",
        BATCH_V2,
        400,
        "The batch header must start with pcId or thirdPartyId",
        b"batch=id,a\n",
        FORM,
    ),
    Case(
        "attribute",
        "batch file without 'batch='",
        "POST",
        BATCH_V2,
        400,
        "The batch file must start with 'batch='.",
        b"pcId,a\np1,x\n",
        FORM,
    ),
    Case(
        "attribute",
        "batch file starting with a byte-order mark",
        "POST",
        BATCH_V2,
        400,
        "The batch file must start with 'batch='.",
        b"\xef\xbb\xbfbatch=pcId,a\np1,x\n",
        FORM,
    ),
    Case(
        "attribute",
        "empty batch file",
        "POST",
        BATCH_V2,
        400,
        "The batch file is empty",
        b" ",
        FORM,
    ),
    Case(
        "attribute",
        "batch header that is not UTF-8",
        "POST",
        BATCH_V2,
        400,
        "The batch header is not valid URL-encoded UTF-8.",
        b"batch=pcId,%FF\n",
        FORM,
    ),
    Case(
        "attribute",
        "attribute name of 129 characters",
        "GET",
        f"{UPDATE}?mboxPC=p1&profile.{'n' * 129}=1",
        400,
        "is longer than 128 characters",
    ),
    Case(
        "attribute",
        "attribute name with a control character",
        "GET",
        f"{UPDATE}?mboxPC=p1&profile.a%07=1",
        400,
        "contains control characters",
    ),
    Case(
        "attribute",
        "attribute value of 300 characters",
        "GET",
        f"{UPDATE}?mboxPC=p1&profile.a={'v' * 300}",
        400,
        "is longer than 256 characters",
    ),
    Case(
        "attribute",
        "attribute value holding NUL",
        "GET",
        f"{UPDATE}?mboxPC=p1&profile.a=%00",
        400,
        "contains a NUL character",
    ),
    # Path traversal in ids ----------------------------------------------------------------
    Case(
        "traversal",
        "batch id '../../etc/passwd'",
        "GET",
        f"{STATUS}?batchId=../../etc/passwd",
        404,
        "No batch '../../etc/passwd' for client demo.",
    ),
    Case(
        "traversal",
        "pcId '../../etc/passwd' in an update",
        "GET",
        f"{UPDATE}?mboxPC=..%2F..%2Fetc%2Fpasswd&profile.a=1",
        404,
        "No profile found for client demo with mboxPC=../../etc/passwd",
    ),
    Case(
        "traversal",
        "encoded slashes in a fetched pcId",
        "GET",
        f"{FETCH}/..%2F..%2Fetc%2Fpasswd?client=demo",
        404,
        "Not found",
    ),
    Case(
        "traversal",
        "client code '..'",
        "GET",
        "/m2/../profile/update?mboxPC=p1&profile.a=1",
        404,
        "Unknown client '..'.",
    ),
    # SQL and HTML in values ---------------------------------------------------------------
    Case(
        "injection",
        "SQL in an attribute value is stored as text",
        "GET",
        f"{UPDATE}?mboxPC=p1&profile.a=%27%3B+DROP+TABLE+profiles_profile%3B+--",
        200,
        "Request successfully submitted",
    ),
    Case(
        "injection",
        "SQL in a fetched thirdPartyId",
        "GET",
        f"{FETCH}/thirdPartyId/%27%20OR%20%271%27%3D%271?client=demo",
        404,
        "No profile found for client demo with third party id=' OR '1'='1",
    ),
    Case(
        "injection",
        "HTML in a batch id is escaped in the answer",
        "GET",
        f"{STATUS}?batchId=%3Cscript%3Ealert(1)%3C/script%3E",
        404,
        "'&lt;script&gt;alert(1)&lt;/script&gt;'",
    ),
    Case(
        "injection",
        "HTML in an attribute value is stored as text",
        "POST",
        UPDATE,
        200,
        "Request successfully submitted",
        b"mboxPC=p1&profile.a=%3Cscript%3Ex%3C%2Fscript%3E",
        FORM,
    ),
    # Unknown clients ----------------------------------------------------------------------
    Case(
        "client",
        "update for an unknown client",
        "GET",
        "/m2/nope/profile/update?mboxPC=p1",
        404,
        "Unknown client 'nope'.",
    ),
    Case(
        "client",
        "fetch for an unknown client",
        "GET",
        f"{FETCH}/p1?client=nope",
        404,
        "Unknown client 'nope'.",
    ),
    Case(
        "client",
        "fetch without a client",
        "GET",
        f"{FETCH}/p1",
        400,
        "The 'client' query parameter is required.",
    ),
    Case(
        "client",
        "client code with upper case",
        "GET",
        "/api/v1/clients/DEMO/batches/x",
        404,
        "Unknown client 'DEMO'.",
    ),
    Case(
        "client",
        "management call for an unknown client",
        "GET",
        "/nope/target/clients/settings",
        403,
        "Only Approvers of client 'nope' can manage",
        headers={"Authorization": "{alice}"},
    ),
    # Cross-client ids ---------------------------------------------------------------------
    Case(
        "cross-client",
        "another client's batch id",
        "GET",
        "/api/v1/clients/demo/batches/{acme_batch}",
        404,
        f"No batch '{ACME_BATCH_ID}'",
    ),
    Case(
        "cross-client",
        "another client's pcId",
        "GET",
        f"{FETCH}/acme-p1?client=demo",
        404,
        "No profile found for client demo with mboxPC=acme-p1",
    ),
    Case(
        "cross-client",
        "another client's token",
        "GET",
        f"{FETCH}/p1?client=demo",
        401,
        "The profile authentication token is invalid.",
        headers={"Authorization": "Bearer {acme_token}"},
        authentication=True,
    ),
    Case(
        "cross-client",
        "an Approver of demo managing acme",
        "GET",
        "/acme/target/clients/settings",
        403,
        "Only Approvers of client 'acme' can manage",
        headers={"Authorization": "{alice}"},
    ),
    # Token failures -----------------------------------------------------------------------
    Case(
        "token",
        "no token",
        "GET",
        f"{FETCH}/p1?client=demo",
        401,
        "Authentication is required: send the profile authentication token",
        authentication=True,
    ),
    Case(
        "token",
        "token in the query string",
        "GET",
        f"{FETCH}/p1?client=demo&access_token={{token}}",
        401,
        "a token in the query string is never accepted",
        authentication=True,
    ),
    Case(
        "token",
        "malformed token",
        "GET",
        f"{FETCH}/p1?client=demo",
        401,
        "The profile authentication token is invalid.",
        headers={"Authorization": "Bearer tpa_short"},
        authentication=True,
    ),
    Case(
        "token",
        "well-formed token nobody issued",
        "GET",
        f"{FETCH}/p1?client=demo",
        401,
        "The profile authentication token is invalid.",
        headers={"Authorization": "Bearer {unknown_token}"},
        authentication=True,
    ),
    Case(
        "token",
        "revoked token",
        "POST",
        BULK,
        401,
        "The profile authentication token is invalid.",
        b'{"profiles": []}',
        JSON,
        {"Authorization": "Bearer {revoked_token}"},
        authentication=True,
    ),
    Case(
        "token",
        "expired token",
        "GET",
        f"{UPDATE}?mboxPC=p1&profile.a=1",
        401,
        "The profile authentication token has expired.",
        headers={"Authorization": "Bearer {expired_token}"},
        authentication=True,
    ),
    Case(
        "token",
        "malformed legacy access_token header",
        "GET",
        f"{STATUS}?batchId=x",
        401,
        "The profile authentication token is invalid.",
        headers={"access_token": "nope"},
        authentication=True,
    ),
    Case(
        "token",
        "Basic credentials on a profile API",
        "GET",
        f"{FETCH}/p1?client=demo",
        401,
        "Authentication is required",
        headers={"Authorization": "{alice}"},
        authentication=True,
    ),
    Case(
        "token",
        "too many failed attempts from one address",
        "GET",
        f"{FETCH}/p1?client=demo",
        429,
        "Too many failed authentication attempts",
        headers={"Authorization": "Bearer tpa_short"},
        authentication=True,
        settings={"PROFILE_API_AUTH_FAILURE_LIMIT": 0},
    ),
    Case(
        "token",
        "management API without credentials",
        "GET",
        SETTINGS,
        401,
        "Authentication required: sign in with HTTP Basic",
    ),
    Case(
        "token",
        "management API with a wrong password",
        "GET",
        SETTINGS,
        401,
        "Invalid username or password.",
        headers={"Authorization": "{alice_wrong}"},
    ),
    Case(
        "token",
        "management API with Basic that is not user:password",
        "GET",
        SETTINGS,
        401,
        "The Basic credentials are not base64",
        headers={"Authorization": MALFORMED_BASIC},
    ),
    Case(
        "token",
        "management API with a Bearer token",
        "GET",
        SETTINGS,
        401,
        "The management API takes HTTP Basic credentials, not 'Bearer'.",
        headers={"Authorization": "Bearer {token}"},
    ),
    Case(
        "token",
        "token request with an unknown scope",
        "POST",
        f"{TOKEN}?scope=admin",
        400,
        "The only scope a token can have is 'profile_api'",
        headers={"Authorization": "{alice}"},
    ),
    Case(
        "token",
        "token request with an expiry not offered",
        "POST",
        f"{TOKEN}?authorizationScope=profile_api&expiresInDays=2",
        400,
        "expiresInDays: must be one of",
        headers={"Authorization": "{alice}"},
    ),
    Case(
        "token",
        "settings PATCH with a string for a boolean",
        "PATCH",
        SETTINGS,
        400,
        "enableProfileApiAuthentication: must be true or false.",
        b'{"enableProfileApiAuthentication": "yes"}',
        JSON,
        {"Authorization": "{alice}"},
    ),
]


def _shown(text: str, limit: int = 70) -> str:
    shown = text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"
    return shown.replace("|", "\\|").replace("`", "'")


def _request(case: Case) -> str:
    parts = [f"`{case.method} {_shown(case.path)}`"]
    for name, value in case.headers.items():
        parts.append(f"`{name}: {_shown(value, 40)}`")
    if case.content_type:
        parts.append(f"`Content-Type: {case.content_type}`")
    if case.body:
        parts.append(f"body `{_shown(repr(case.body)[2:-1], 50)}`")
    if case.authentication:
        parts.append("(authentication required)")
    for name, value in case.settings.items():
        parts.append(f"(`{name}={value}`)")
    if case.transport != "test client":
        parts.append(f"(over a real {case.transport})")
    return "<br>".join(parts)


def markdown() -> str:
    lines = [
        "# Bad input catalogue",
        "",
        "Every malformed or hostile request the test suite sends, and what it receives.",
        "Generated from `tests/bad_input_catalogue.py` (`make bad-input-catalogue`); "
        "`tests/test_bad_input_catalogue.py` sends each request and fails when an answer, "
        "or this page, differs.",
        "The message column is a fragment of the answer's message as the body carries it "
        "(XML- or JSON-escaped). Placeholders in braces stand for a real token, batch id or "
        "Basic credentials of alice, an Approver of `demo`.",
        "",
        f"{len(CASES)} requests.",
        "",
        "| # | kind | what | request | status | message |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for number, case in enumerate(CASES, 1):
        lines.append(
            f"| {number} | {case.category} | {_shown(case.what, 100)} | {_request(case)} "
            f"| {case.status} | {_shown(case.message, 100)} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
