"""Reading a batch file upload from the request (docs/api.md#batch-file-update).

The upload is read as it arrives and handed, chunk by chunk, to a
``profiles.ingest.batchfile.BatchFileWriter``: only bytes cross into ``ingest``. A raw body
(``curl --data-binary @file``) is read as it is; a multipart one is read through Django's
multipart parser, whose file field ``batch`` goes straight to the writer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParser

from profiles.ingest.batchfile import BatchFileWriter, FileRefused, StoredFile
from profiles.rules.errors import ErrorCode

READ_CHUNK_BYTES = 256 * 1024
# Part headers, boundaries and small form fields around the file in a multipart body.
MULTIPART_ALLOWANCE_BYTES = 64 * 1024


class UploadStream:
    """The request body, read once as it arrives: counted, capped, and checked whole.

    With a Content-Length the body is read through Django's request stream. Without one
    (``Transfer-Encoding: chunked``) it is read from ``wsgi.input`` to its end, which a
    server says it can do by setting ``wsgi.input_terminated`` (gunicorn de-chunks the body
    and does); any other server's chunked upload is refused, as it cannot be read safely.
    Either way the body is refused as soon as it reaches ``max_bytes`` plus ``allowance``.

    With ``boundary`` (a multipart body) the stream ends at the closing boundary, as
    RFC 2046 says what follows it is ignored. :meth:`finish` refuses a body that ended
    before the bytes it announced (a client that hung up mid-upload) or, multipart, before
    its closing boundary: either way its last part may be cut short, and applying it would
    apply a truncated file as if it were whole (docs/api.md#batch-file-update).
    """

    def __init__(
        self, request: HttpRequest, *, max_bytes: int, allowance: int = 0, boundary: str = ""
    ) -> None:
        self.max_bytes = max_bytes
        self.limit = max_bytes + allowance
        self.received = 0
        meta = request.META
        declared = meta.get("CONTENT_LENGTH") or ""
        self.declared = int(declared) if declared.isdigit() else None
        if self.declared is not None and self.declared >= self.limit:
            raise self._too_large()
        # Without a Content-Length, Django's request stream reads nothing.
        self._read: Callable[[int], bytes] = request.read
        if self.declared is None and meta.get("wsgi.input_terminated"):
            self._read = meta["wsgi.input"].read
        elif self.declared is None and request.headers.get("Transfer-Encoding"):
            raise FileRefused(
                ErrorCode.BAD_REQUEST,
                "This server cannot read an upload sent with Transfer-Encoding: chunked; "
                "send it with a Content-Length.",
            )
        # The closing delimiter is CRLF "--" boundary "--"; the CRLF is implied at the start.
        self._close = f"\r\n--{boundary}--".encode(errors="replace") if boundary else b""
        self._carry = b"\r\n"
        self.closed = False

    def _too_large(self) -> FileRefused:
        return FileRefused(
            ErrorCode.TOO_LARGE, f"The batch file must be smaller than {self.max_bytes:,} bytes."
        )

    def _take(self, size: int) -> bytes:
        try:
            data = self._read(size)
        except Exception as error:  # a timeout, a dropped connection, a server's bad chunk
            raise self._broken(error) from None
        self.received += len(data)
        if self.received >= self.limit:
            raise self._too_large()
        return data

    def _broken(self, error: Exception) -> FileRefused:
        cause = error.__cause__ or error  # Django re-raises an OSError as UnreadablePostError
        if isinstance(cause, TimeoutError) or "timed out" in str(cause):
            # The server's socket timeout ran out (a later read says "timed out object").
            return FileRefused(
                ErrorCode.REQUEST_TIMEOUT,
                f"The upload was too slow: the server stopped waiting after "
                f"{self.received:,} bytes.",
            )
        # A dropped connection, or a chunked body that ends inside a chunk.
        return FileRefused(ErrorCode.BAD_REQUEST, "The upload broke off before its end.")

    def read(self, size: int | None = None, /) -> bytes:
        if self.closed:
            return b""
        data = self._take(READ_CHUNK_BYTES if size is None or size < 0 else size)
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
        while self._take(READ_CHUNK_BYTES):
            pass
        if self.declared is not None and self.received < self.declared:
            raise FileRefused(
                ErrorCode.BAD_REQUEST,
                f"The upload ended after {self.received:,} of {self.declared:,} bytes "
                "it announced.",
            )
        if self._close and not self.closed:
            raise FileRefused(
                ErrorCode.BAD_REQUEST,
                "The multipart upload ended before its closing boundary.",
            )


def store_raw_body(request: HttpRequest, writer: BatchFileWriter) -> StoredFile:
    """Stream a raw request body (``curl --data-binary @file``) into ``writer``.

    The body is read from the request stream, never through ``request.body`` or
    ``request.POST``, so Django's in-memory limits do not apply and memory stays flat.
    """
    stream = UploadStream(request, max_bytes=writer.max_bytes)
    while chunk := stream.read(READ_CHUNK_BYTES):
        writer.write(chunk)
    stream.finish()
    return writer.finish()


class BatchUploadHandler(FileUploadHandler):
    """Send the multipart field ``batch`` straight into a ``BatchFileWriter``."""

    chunk_size = READ_CHUNK_BYTES

    def __init__(self, writer: BatchFileWriter, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.writer = writer
        self.receiving = False
        self.received = False

    def new_file(self, field_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, *args, **kwargs)
        self.receiving = field_name == "batch" and not self.received
        self.received = self.received or self.receiving

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if self.receiving:
            self.writer.write(raw_data)
            return None
        return raw_data

    def file_complete(self, file_size: int) -> None:
        self.receiving = False


def store_multipart(request: HttpRequest, writer: BatchFileWriter) -> StoredFile:
    """Stream the multipart file field ``batch`` into ``writer``.

    The field's content may start with ``batch=`` or directly with the header. Django's
    parser reads the body through an ``UploadStream``, since on its own it takes a body cut
    short, or one without its closing boundary, as if it had ended there.
    """
    stream = UploadStream(
        request,
        max_bytes=writer.max_bytes,
        allowance=MULTIPART_ALLOWANCE_BYTES,
        boundary=(request.content_params or {}).get("boundary", ""),
    )
    meta = request.META
    if stream.declared is None:
        # A chunked body has no Content-Length; without one the parser reads nothing.
        meta = {**meta, "CONTENT_LENGTH": str(stream.limit)}
    handler = BatchUploadHandler(writer, request)
    parser = MultiPartParser(meta, stream, [handler], request.encoding)  # type: ignore[arg-type]
    fields, _ = parser.parse()  # parsing the body drives the handler
    stream.finish()
    if not handler.received:
        text = fields.get("batch")
        if text is None:
            raise FileRefused(ErrorCode.BAD_REQUEST, "The multipart upload has no 'batch' field.")
        writer.write(text.encode())
    return writer.finish()
