"""Request bodies: the one place a body is read from the connection (docs/api.md#request-bodies).

Every endpoint that reads a body reads it through :class:`BodyStream` (whole, with
:func:`read_body`), so a body sent with ``Transfer-Encoding: chunked`` is read exactly as one
sent with a ``Content-Length``, under the same limit, or refused by name (411); it is never
taken for an empty one.

- With a Content-Length the body is read through Django's request stream.
- Without one, it is read from ``wsgi.input`` to its end, which a server says it can do by
  setting ``wsgi.input_terminated`` (gunicorn de-chunks the body and does). Django's own
  request stream would read nothing.
- A chunked body to any other server cannot be read safely: it is refused with 411. So is
  one to a page, which reads its form through Django (``targetadmin.request_bodies``); the
  views that read their bodies here are marked with :func:`read_chunked_bodies`.

A body is refused as soon as it passes its endpoint's limit, before the rest is read, and
one that ends before the bytes it announced (a client that hung up) is refused whole rather
than read as if it were complete.
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from typing import Any

from django.http import HttpRequest, QueryDict
from django.http.multipartparser import MultiPartParser
from django.utils.datastructures import MultiValueDict

from profiles.rules.errors import ErrorCode, ProductError
from profiles.rules.faults import READ_TIMEOUT_MESSAGE

READ_BYTES = 256 * 1024
CHUNKED_UNREADABLE = (
    "A request body sent with Transfer-Encoding: chunked cannot be read here; "
    "send it with a Content-Length."
)


def _declared_length(meta: dict[str, Any]) -> int | None:
    """The Content-Length, or ``None`` when the request has none."""
    declared = meta.get("CONTENT_LENGTH") or ""
    if not declared:
        return None
    if not declared.isdigit():
        raise ProductError(ErrorCode.BAD_REQUEST, "The Content-Length header is not a number.")
    return int(declared)


class BodyStream:
    """The request body, read once as it arrives: counted, capped, and checked whole.

    More than ``max_bytes`` bytes raise ``too_large()``. With ``boundary`` (a multipart
    body) the stream ends at the closing boundary, as RFC 2046 says what follows it is
    ignored. :meth:`finish` refuses a body that ended before the bytes it announced or,
    multipart, before its closing boundary: either way its last part may be cut short, and
    reading it as whole would apply a truncated body as if it were complete.
    """

    def __init__(
        self,
        request: HttpRequest,
        *,
        max_bytes: int,
        too_large: Callable[[], ProductError],
        boundary: str = "",
    ) -> None:
        self.max_bytes = max_bytes
        self.too_large = too_large
        self.received = 0
        meta = request.META
        self.declared = _declared_length(meta)
        if (self.declared or 0) > max_bytes:
            raise too_large()
        self._read: Callable[[int], bytes] = request.read
        if self.declared is None and meta.get("wsgi.input_terminated"):
            self._read = meta["wsgi.input"].read
        elif is_chunked(request):
            raise ProductError(ErrorCode.LENGTH_REQUIRED, CHUNKED_UNREADABLE)
        # The closing delimiter is CRLF "--" boundary "--"; the CRLF is implied at the start.
        self._close = f"\r\n--{boundary}--".encode(errors="replace") if boundary else b""
        self._carry = b"\r\n"
        self.closed = False

    def _take(self, size: int) -> bytes:
        try:
            data = self._read(size)
        except Exception as error:  # a timeout, a dropped connection, a server's bad chunk
            raise self._broken(error) from None
        self.received += len(data)
        if self.received > self.max_bytes:
            raise self.too_large()
        return data

    def _broken(self, error: Exception) -> ProductError:
        cause = error.__cause__ or error  # Django re-raises an OSError as UnreadablePostError
        if isinstance(cause, TimeoutError) or "timed out" in str(cause):
            # The server's socket timeout ran out (a later read says "timed out object").
            return ProductError(ErrorCode.REQUEST_TIMEOUT, READ_TIMEOUT_MESSAGE)
        # A dropped connection, or a chunked body that ends inside a chunk.
        return ProductError(ErrorCode.BAD_REQUEST, "The upload broke off before its end.")

    def read(self, size: int | None = None, /) -> bytes:
        if self.closed:
            return b""
        data = self._take(READ_BYTES if size is None or size < 0 else size)
        if self._close:
            window = self._carry + data
            found = window.find(self._close)
            if found >= 0:
                self.closed = True
                return data[: found + len(self._close) - len(self._carry)]
            self._carry = window[-(len(self._close) - 1) :]
        return data

    def finish(self) -> None:
        """Read what is left (a multipart epilogue) and refuse a body that ended early."""
        while self._take(READ_BYTES):
            pass
        if self.declared is not None and self.received < self.declared:
            raise ProductError(
                ErrorCode.BAD_REQUEST,
                f"The upload ended after {self.received:,} of {self.declared:,} bytes "
                "it announced.",
            )
        if self._close and not self.closed:
            raise ProductError(
                ErrorCode.BAD_REQUEST, "The multipart upload ended before its closing boundary."
            )


def read_body(
    request: HttpRequest, *, max_bytes: int, too_large: Callable[[], ProductError]
) -> bytes:
    """The whole body, of at most ``max_bytes`` bytes (``too_large()`` is raised past them)."""
    stream = BodyStream(request, max_bytes=max_bytes, too_large=too_large)
    parts = []
    # Never more than one byte past the limit is asked for, so a body over it is refused
    # as soon as that byte arrives, not once a larger read has been filled.
    while part := stream.read(min(READ_BYTES, max_bytes - stream.received + 1)):
        parts.append(part)
    stream.finish()
    return b"".join(parts)


def read_chunked_bodies[View: Callable[..., Any]](view: View) -> View:
    """Mark ``view`` as reading its body here, so a chunked one may reach it.

    Any other view on the pages' path is refused a chunked body (411,
    ``targetadmin.request_bodies``): Django would read it as empty.
    """
    view.reads_chunked_bodies = True  # type: ignore[attr-defined]
    return view


def reads_chunked_bodies(view: object) -> bool:
    return getattr(view, "reads_chunked_bodies", False) is True


def is_chunked(request: HttpRequest) -> bool:
    """Whether the body comes without a Content-Length, in chunks: Django reads it as empty."""
    meta = request.META
    return not meta.get("CONTENT_LENGTH") and bool(meta.get("HTTP_TRANSFER_ENCODING"))


def form(request: HttpRequest, body: bytes) -> tuple[QueryDict, MultiValueDict[str, Any]]:
    """``body`` read as Django reads a form: its fields and, multipart, its files.

    A body of another content type has neither.
    """
    if request.content_type == "multipart/form-data":
        meta = {**request.META, "CONTENT_LENGTH": str(len(body))}
        parser = MultiPartParser(meta, BytesIO(body), request.upload_handlers, request.encoding)
        return parser.parse()
    if request.content_type == "application/x-www-form-urlencoded":
        return QueryDict(body, encoding=request.encoding), MultiValueDict()
    return QueryDict(encoding=request.encoding), MultiValueDict()
