"""Where batch files wait for a worker: Django's storage ``"batches"`` (docs/operations.md#batch-storage).

A batch file (and a JSON bulk batch stored for the worker) is written once, as its upload
arrives, read by a worker from a byte offset (the batch's resume point) and deleted once the
batch is finished or pruned. ``BATCH_STORAGE`` picks the backend:

- :class:`DirectoryStorage`: files in ``BATCH_DIR``, for one host (the default);
- :class:`DatabaseStorage`: the file in the database, in :class:`BatchFileChunk` rows of
  ``FILE_CHUNK_BYTES``, for any number of hosts with nothing but the database shared;
- ``profiles.ingest.object_storage.ObjectStorage``: an S3-compatible bucket.

Whatever the backend, :func:`open_at` returns the file as a buffered binary stream already
at the offset, so the worker reads on from there and never reads what comes before.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO, Any, cast

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.core.signals import setting_changed
from django.db import models, transaction
from django.db.models.functions import Length
from django.utils.deconstruct import deconstructible
from django.utils.functional import cached_property

from adapters.local_state import (
    PRIVATE_DIRECTORY,
    PRIVATE_FILE,
    private_directory,
    private_opener,
)

BATCHES = "batches"  # the alias in STORAGES
FILE_CHUNK_BYTES = 256 * 1024  # of a file kept in the database, one row each
READ_BUFFER_BYTES = 64 * 1024


def batch_files() -> Storage:
    return storages[BATCHES]


def open_at(name: str, offset: int) -> IO[bytes]:
    """The stored file ``name``, positioned at byte ``offset``; the caller closes it."""
    stored = batch_files().open(name, "rb")
    # The stream under Django's File: File's own iteration starts over from the beginning.
    handle: IO[bytes] = getattr(stored, "file", None) or stored
    handle.seek(offset)
    return handle


@deconstructible(path="profiles.ingest.storage.DirectoryStorage")
class DirectoryStorage(FileSystemStorage):
    """Files in ``BATCH_DIR`` (unless given a ``location``), created with their folder.

    Profile data is for this server's user alone: the folder is created 0700 and each file
    0600, whatever the umask (adapters/local_state.py).
    """

    def __init__(self, location: str | None = None, **options: Any) -> None:
        options.setdefault("file_permissions_mode", PRIVATE_FILE)  # for save()
        options.setdefault("directory_permissions_mode", PRIVATE_DIRECTORY)
        super().__init__(location=location, **options)
        self._given_location = location
        setting_changed.connect(self._batch_dir_changed)

    @cached_property
    def base_location(self) -> Any:
        return settings.BATCH_DIR if self._given_location is None else self._given_location

    def _batch_dir_changed(self, setting: str, **kwargs: Any) -> None:
        if setting == "BATCH_DIR":
            self.__dict__.pop("base_location", None)
            self.__dict__.pop("location", None)

    def _open(self, name: str, mode: str = "rb") -> File[Any]:
        path = self.path(name)
        if "w" not in mode:
            return File(open(path, mode))  # the caller closes it, through File
        private_directory(Path(path).parent)
        return File(open(path, mode, opener=private_opener))


class BatchFileChunk(models.Model):
    """``FILE_CHUNK_BYTES`` of a batch file kept in the database (``BATCH_STORAGE=database``).

    A file's chunks follow each other without gaps: each starts at the byte its
    predecessor ended at, so the chunk holding byte N is the last one starting at or before N.
    A file has at least one chunk (an empty one when the file is empty).
    """

    name = models.CharField(max_length=200)
    offset = models.BigIntegerField(help_text="Byte offset of the chunk's first byte in the file.")
    data = models.BinaryField()

    class Meta:
        constraints = (
            # Also the index that finds the chunk holding a byte offset.
            models.UniqueConstraint(fields=("name", "offset"), name="batch_file_chunk_at"),
        )

    def __str__(self) -> str:
        return f"{self.name} @{self.offset}"


class _ChunkWriter(io.RawIOBase):
    """Appends to a file in the database a chunk at a time; holds at most one chunk."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self._offset = 0
        self._buffer = bytearray()
        BatchFileChunk.objects.filter(name=name).delete()  # "w" starts the file afresh

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed file")
        self._buffer += data
        while len(self._buffer) >= FILE_CHUNK_BYTES:
            self._insert(bytes(self._buffer[:FILE_CHUNK_BYTES]))
            del self._buffer[:FILE_CHUNK_BYTES]
        return len(data)

    def _insert(self, data: bytes) -> None:
        # Each chunk commits on its own: a long upload never holds a transaction open (on
        # SQLite, the one write lock) while its client sends.
        with transaction.atomic():
            BatchFileChunk.objects.create(name=self.name, offset=self._offset, data=data)
        self._offset += len(data)

    def close(self) -> None:
        """Store the last chunk. Closed even when that fails, as a file on a full disk is."""
        if self.closed:
            return
        try:
            if self._buffer or not self._offset:
                self._insert(bytes(self._buffer))
        finally:
            self._buffer = bytearray()
            super().close()


class SeekableReader(io.RawIOBase):
    """A stored file read from any offset: a seek only moves the position, and each
    ``readinto`` fetches from there. Subclasses give the file's size and may let go of
    what they fetched for the old position when it moves."""

    def __init__(self) -> None:
        super().__init__()
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._position
        elif whence == io.SEEK_END:
            offset += self._size()
        if offset < 0:
            raise ValueError(f"negative seek position {offset}")
        if offset != self._position:
            self._moving()
        self._position = offset
        return offset

    def _size(self) -> int:
        raise NotImplementedError

    def _moving(self) -> None:
        """Called before the position changes; by default nothing is kept to let go of."""


class _ChunkReader(SeekableReader):
    """Reads a file in the database from any offset, fetching one chunk at a time."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self._start = 0
        self._data = memoryview(b"")

    def _size(self) -> int:
        return DatabaseStorage().size(self.name)

    def readinto(self, buffer: Any) -> int:
        at = self._position - self._start
        if not 0 <= at < len(self._data):
            chunks = BatchFileChunk.objects.filter(name=self.name)
            if at == len(self._data) and self._data:
                chunks = chunks.filter(offset=self._position)  # read on into the next one
            else:
                chunks = chunks.filter(offset__lte=self._position).order_by("-offset")
            found = chunks.values_list("offset", "data").first()
            if found is None:
                return 0
            self._start, data = found
            self._data = memoryview(data)
            at = self._position - self._start
            if at >= len(self._data):
                return 0  # past the last chunk: the end of the file
        count = min(len(buffer), len(self._data) - at)
        buffer[:count] = self._data[at : at + count]
        self._position += count
        return count

    def close(self) -> None:
        self._data = memoryview(b"")
        super().close()


@deconstructible(path="profiles.ingest.storage.DatabaseStorage")
class DatabaseStorage(Storage):
    """Files in the database's ``BatchFileChunk`` table, read back from any host.

    Opened for writing, a file is stored as it is written, a chunk at a time; opened for
    reading, a seek costs nothing and each read fetches at most the chunk it needs.
    """

    def _open(self, name: str, mode: str = "rb") -> File[Any]:
        if "w" in mode:
            return File(cast(IO[bytes], _ChunkWriter(name)), name)
        if not self.exists(name):
            raise FileNotFoundError(f"no stored batch file {name!r}")
        reader = _ChunkReader(name)
        return File(io.BufferedReader(reader, READ_BUFFER_BYTES), name)

    def _save(self, name: str, content: File[Any]) -> str:
        writer = _ChunkWriter(name)
        try:
            for piece in content.chunks(FILE_CHUNK_BYTES):
                writer.write(piece)
        finally:
            writer.close()
        return name

    def exists(self, name: str) -> bool:
        return BatchFileChunk.objects.filter(name=name, offset=0).exists()

    def delete(self, name: str) -> None:
        BatchFileChunk.objects.filter(name=name).delete()

    def size(self, name: str) -> int:
        last = (
            BatchFileChunk.objects.filter(name=name)
            .order_by("-offset")
            .values_list("offset", Length("data"))
            .first()
        )
        if last is None:
            raise FileNotFoundError(f"no stored batch file {name!r}")
        offset, length = last
        return int(offset) + int(length)

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        names = BatchFileChunk.objects.filter(offset=0).order_by("name")
        return [], list(names.values_list("name", flat=True))
