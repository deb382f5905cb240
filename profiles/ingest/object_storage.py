"""Batch files in an S3-compatible bucket (``BATCH_STORAGE=s3``, docs/operations.md#batch-storage).

django-storages' ``S3Storage`` writes a file as a multipart upload, a part (5 MB) at a time,
so an upload is never held whole. Its files read the whole object before the first byte,
though, and the worker opens the file again at its resume point for every chunk it applies:
:class:`ObjectStorage` reads instead with ranged GETs from the offset on, streamed.

Imported only when configured, so the other storages never load boto3.
"""

from __future__ import annotations

import io
from typing import Any

from botocore.exceptions import ClientError
from django.core.files import File
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

from profiles.ingest.storage import READ_BUFFER_BYTES, SeekableReader

_RANGE_NOT_SATISFIABLE = 416  # the offset is at or past the end of the object


class _RangeReader(SeekableReader):
    """An object read from any offset: one streamed ranged GET from each seek on."""

    def __init__(self, item: Any) -> None:
        super().__init__()
        self._object = item
        self._body: Any = None

    def _size(self) -> int:
        return int(self._object.content_length)

    def _moving(self) -> None:
        self._drop_body()

    def readinto(self, buffer: Any) -> int:
        if self._body is None:
            try:
                answer = self._object.get(Range=f"bytes={self._position}-")
            except ClientError as error:
                status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if status == _RANGE_NOT_SATISFIABLE:
                    return 0
                raise
            self._body = answer["Body"]
        data = self._body.read(len(buffer))
        count = len(data)
        buffer[:count] = data
        self._position += count
        return count

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop_body()
        super().close()


class ObjectStorage(S3Storage):  # type: ignore[misc]
    """``S3Storage`` whose files, opened for reading, seek by ranged reads."""

    def _open(self, name: str, mode: str = "rb") -> File[Any]:
        if "w" in mode:
            return super()._open(name, mode)  # type: ignore[no-any-return]
        if not self.exists(name):
            raise FileNotFoundError(f"no stored batch file {name!r}")
        item = self.bucket.Object(self._normalize_name(clean_name(name)))
        return File(io.BufferedReader(_RangeReader(item), READ_BUFFER_BYTES), name)
