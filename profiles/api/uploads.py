"""Reading a batch file upload from the request (docs/api.md#batch-file-update).

The upload is read as it arrives (``profiles.api.bodies``: with a Content-Length or chunked)
and handed, piece by piece, to a ``profiles.ingest.batchfile.BatchFileWriter``: only bytes
cross into ``ingest``. A raw body (``curl --data-binary @file``) is read as it is; a
multipart one is read through Django's multipart parser, whose file field ``batch`` goes
straight to the writer.
"""

from __future__ import annotations

from typing import Any

from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParser

from profiles.api.bodies import READ_BYTES, BodyStream
from profiles.ingest.batchfile import BatchFileWriter, FileRefused, StoredFile, file_too_large
from profiles.rules.errors import ErrorCode

# Part headers, boundaries and small form fields around the file in a multipart body.
MULTIPART_ALLOWANCE_BYTES = 64 * 1024


def _stream(
    request: HttpRequest, writer: BatchFileWriter, *, allowance: int = 0, boundary: str = ""
) -> BodyStream:
    """The body, of at most the file's limit and ``allowance`` (the multipart framing)."""
    return BodyStream(
        request,
        max_bytes=writer.max_bytes - 1 + allowance,  # a batch file is smaller than max_bytes
        too_large=lambda: file_too_large(writer.max_bytes),
        boundary=boundary,
    )


def store_raw_body(request: HttpRequest, writer: BatchFileWriter) -> StoredFile:
    """Stream a raw request body (``curl --data-binary @file``) into ``writer``.

    The body is read from the request stream, never through ``request.body`` or
    ``request.POST``, so Django's in-memory limits do not apply and memory stays flat.
    """
    stream = _stream(request, writer)
    while chunk := stream.read(READ_BYTES):
        writer.write(chunk)
    stream.finish()
    return writer.finish()


class BatchUploadHandler(FileUploadHandler):
    """Send the multipart field ``batch`` straight into a ``BatchFileWriter``."""

    chunk_size = READ_BYTES

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
    parser reads the body through a ``BodyStream``, since on its own it takes a body cut
    short, or one without its closing boundary, as if it had ended there.
    """
    stream = _stream(
        request,
        writer,
        allowance=MULTIPART_ALLOWANCE_BYTES,
        boundary=(request.content_params or {}).get("boundary", ""),
    )
    meta = request.META
    if stream.declared is None:
        # A chunked body has no Content-Length; without one the parser reads nothing.
        meta = {**meta, "CONTENT_LENGTH": str(stream.max_bytes + 1)}
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
