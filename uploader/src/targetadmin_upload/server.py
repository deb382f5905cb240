"""The HTTP side: submitting a part, reading batch statuses, retrying what can be retried.

Only targetadmin's public API is used (docs/api.md#batch-file-update, docs/api.md#batch-status).
Network failures, timeouts and the statuses that say "later" (408, 429, 502, 503, 504, 507)
are retried with exponential backoff, waiting at least what ``Retry-After`` asks; any other
refusal stops the run with the server's own message.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, cast
from urllib.parse import parse_qs, quote, urlsplit
from xml.etree.ElementTree import Element, ParseError, XMLPullParser

import requests

from targetadmin_upload import __version__
from targetadmin_upload.errors import GaveUp, Refused

RETRYABLE_STATUSES = frozenset({408, 429, 502, 503, 504, 507})
NETWORK_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
TIMEOUT = (15, 300)  # seconds to connect, and to wait for each read or write
MAX_BACKOFF = 60.0
MAX_RETRY_AFTER = 900.0
COUNTS = ("consumedCount", "successfulUpdates", "profilesNotFound", "failedUpdates")
_LINE = re.compile(r"Line (\d+): (.*)", re.DOTALL)
_COUNT = re.compile(r"[0-9]{1,18}")


@dataclass(slots=True)
class BatchStatus:
    batch_id: str
    status: str
    batch_size: int
    consumed: int
    successful: int
    not_found: int
    failed: int


@dataclass(slots=True)
class RowFailure:
    key: str
    line: int | None  # the line of the part's batch file, or None when the message has none
    reason: str


def retry_after(response: requests.Response) -> float | None:
    """The seconds ``Retry-After`` asks for (delta-seconds or an HTTP date), if it says."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(0.0, when.timestamp() - time.time()), MAX_RETRY_AFTER)


def message_of(response: requests.Response) -> str:
    """The server's one-line message from an XML or JSON error answer, else its status."""
    text = response.text[:4000]
    found = re.search(r"<message>(.*?)</message>", text, re.DOTALL)
    if found:
        return _unescape(found.group(1)).strip()
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        if isinstance(body.get("message"), str):
            return str(body["message"])
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return f"HTTP {response.status_code} {response.reason}".strip()


def _unescape(text: str) -> str:
    for entity, char in (
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&quot;", '"'),
        ("&#x27;", "'"),
        ("&#39;", "'"),
    ):
        text = text.replace(entity, char)
    return text.replace("&amp;", "&")


class Server:
    """One client's batch endpoints on one targetadmin server.

    Safe to use from several threads: each thread gets its own connection pool.
    """

    def __init__(
        self,
        base_url: str,
        client: str,
        token: str | None,
        *,
        retries: int,
        on_retry: Callable[[str], None] = lambda message: None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.retries = retries
        self.on_retry = on_retry
        self.sleep = sleep
        self._headers = {"User-Agent": f"targetadmin-upload/{__version__}"}
        self.has_token = bool(token)
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers.update(self._headers)
        return session

    def url(self, path: str) -> str:
        return f"{self.base_url}/m2/{quote(self.client, safe='')}/{path}"

    def _request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        body: Callable[[], Iterable[bytes]] | None = None,
        size: int = 0,
        retries: int | None = None,
        **options: Any,
    ) -> requests.Response:
        """Send until the answer is not one to retry; raise ``GaveUp`` when retries run out."""
        retries = self.retries if retries is None else retries
        attempt = 0
        while True:
            try:
                response = self._session().request(
                    method,
                    url,
                    data=None if body is None else _Body(body(), size),
                    timeout=TIMEOUT,
                    allow_redirects=False,
                    **options,
                )
            except NETWORK_ERRORS as error:
                problem, wait = _short(error), None
            else:
                if response.status_code not in RETRYABLE_STATUSES:
                    return response
                problem, wait = (
                    f"{response.status_code}: {message_of(response)}",
                    retry_after(response),
                )
                response.close()
            attempt += 1
            if attempt > retries:
                raise GaveUp(f"{what} failed {attempt} times; the last: {problem}")
            backoff = min(MAX_BACKOFF, 2.0 ** (attempt - 1)) * random.uniform(1.0, 1.25)  # noqa: S311
            delay = max(wait, backoff) if wait is not None else backoff
            self.on_retry(f"{what}: {problem}; retry {attempt} of {retries} in {delay:.0f} s")
            self.sleep(delay)

    def check(self) -> None:
        """Refuse early, before reading the file, when the client or the token is refused."""
        response = self._request(
            "GET",
            self.url("profile/batchStatus"),
            what="Checking the server",
            params={"batchId": "targetadmin-upload-check"},
            retries=min(self.retries, 2),
        )
        if response.status_code == 404 and "No batch" in message_of(response):
            return
        if response.status_code in (401, 403):
            raise Refused(_token_refused(message_of(response), sent=self.has_token))
        if response.status_code >= 400:
            raise Refused(f"{self.base_url} refused client {self.client!r}: {message_of(response)}")

    def submit(
        self,
        body: Callable[[], Iterable[bytes]],
        size: int,
        *,
        create: bool,
        idempotency_key: str,
        what: str,
    ) -> str:
        """POST one batch file; its batch id (the original batch's, for a replayed key)."""
        response = self._request(
            "POST",
            self.url("v2/profile/batchUpdate" if create else "profile/batchUpdate"),
            what=what,
            body=body,
            size=size,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Idempotency-Key": idempotency_key,
            },
        )
        if response.status_code in (401, 403):
            raise Refused(_token_refused(message_of(response), sent=self.has_token))
        if 300 <= response.status_code < 400:
            location = response.headers.get("Location", "elsewhere")
            raise Refused(f"{what}: the server redirects to {location}; use that as --server.")
        if response.status_code == 413:
            raise Refused(
                f"{what} refused: {message_of(response)} The server's limits are lower than"
                " this tool's: pass them as --max-rows and --max-bytes."
            )
        if response.status_code != 200:
            raise Refused(f"{what} refused: {message_of(response)}")
        found = re.search(r"<batchStatus>(.*?)</batchStatus>", response.text)
        batch_ids = (
            parse_qs(urlsplit(_unescape(found.group(1))).query).get("batchId") if found else None
        )
        if not batch_ids:
            raise Refused(f"{what}: the answer names no batch: {response.text[:200]!r}")
        return batch_ids[0]

    def _status_response(self, batch_id: str) -> requests.Response:
        response = self._request(
            "GET",
            self.url("profile/batchStatus"),
            what=f"Reading the status of batch {batch_id}",
            params={"batchId": batch_id, "showDetails": "true"},
            stream=True,
        )
        if response.status_code in (401, 403):
            raise Refused(_token_refused(message_of(response), sent=self.has_token))
        if response.status_code != 200:
            raise Refused(f"Reading the status of batch {batch_id}: {message_of(response)}")
        return response

    def status(self, batch_id: str) -> BatchStatus:
        """The batch's status and counts; its failed rows are not read."""
        with self._status_response(batch_id) as response:
            for found in _status_document(response, batch_id):
                if isinstance(found, BatchStatus):
                    return found
        raise GaveUp(f"The status of batch {batch_id} ended early.")

    def failures(self, batch_id: str) -> Iterator[RowFailure]:
        """The batch's failed rows, streamed as the server sends them."""
        with self._status_response(batch_id) as response:
            for found in _status_document(response, batch_id):
                if isinstance(found, RowFailure):
                    yield found


def _token_refused(message: str, *, sent: bool) -> str:
    what = "The server refused the token" if sent else "The server wants a token"
    return (
        f"{what}: {message} Put the client's profile authentication token in the file named"
        " by --token-file, or in TARGETADMIN_TOKEN."
    )


def _short(error: Exception) -> str:
    """What went wrong, without the layers of reprs urllib3 wraps around the cause."""
    text = str(error)
    reason = re.findall(r"\[Errno -?\d+\] ([^'\")]+)", text)
    return reason[-1].strip() if reason else f"{type(error).__name__}: {text[:200]}"


def _status_document(
    response: requests.Response, batch_id: str
) -> Iterator[BatchStatus | RowFailure]:
    """Read a ``batchStatus`` XML answer as it streams: the counts once, then each failure."""
    parser: XMLPullParser[Element] = XMLPullParser(events=("start", "end"))
    values: dict[str, str] = {}
    depth = 0
    root: Element | None = None
    try:
        for chunk in response.iter_content(64 * 1024):
            parser.feed(chunk)
            for item in parser.read_events():
                event, element = cast("tuple[str, object]", item)
                if not isinstance(element, Element):
                    continue
                if event == "start":
                    root = element if root is None else root
                    depth += 1
                    continue
                depth -= 1
                if depth != 1 or root is None:
                    continue  # the response itself, or inside a <profile>
                if element.tag == "profile":
                    yield _failure(element)
                    root.clear()  # what was read is not kept, however many failures follow
                    continue
                values[element.tag] = element.text or ""
                if element.tag == COUNTS[-1]:
                    yield _status(values, batch_id)
        parser.close()
    except ParseError as error:
        raise GaveUp(f"The status of batch {batch_id} is not readable XML: {error}") from None


def _failure(element: Element) -> RowFailure:
    message = element.findtext("message") or ""
    line = _LINE.match(message)
    return RowFailure(
        key=element.findtext("id") or "",
        line=int(line.group(1)) if line else None,
        reason=line.group(2) if line else message,
    )


def _status(values: dict[str, str], batch_id: str) -> BatchStatus:
    def count(name: str) -> int:
        text = values.get(name) or "0"
        if not _COUNT.fullmatch(text):
            raise GaveUp(
                f"The status of batch {batch_id} is not one targetadmin answers: {name} is"
                f" {text[:40]!r}, not a whole number"
            )
        return int(text)

    return BatchStatus(
        batch_id=values.get("batchId", batch_id),
        status=values.get("status", ""),
        batch_size=count("batchSize"),
        consumed=count("consumedCount"),
        successful=count("successfulUpdates"),
        not_found=count("profilesNotFound"),
        failed=count("failedUpdates"),
    )


class _Body:
    """A body requests streams, chunk by chunk, with its ``Content-Length``."""

    def __init__(self, chunks: Iterable[bytes], size: int) -> None:
        self._chunks = iter(chunks)
        self._size = size

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks
