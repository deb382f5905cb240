"""Local state only its owner may read: ``var/`` and the files in it (docs/security.md#hardening).

``var/`` (``TARGETADMIN_VAR_DIR``) holds the SQLite database, whose sessions open the screen
as their Approver, the secret key that signs them, the token encryption key and the batch
files waiting for the worker. Under the usual umask (022) a directory is created readable by
every user of the host, and so is a file SQLite creates. So:

- ``var/`` is created 0700 and the key files 0600 (:func:`private_directory`,
  :func:`create_private_file`), and so are the batch files in ``BATCH_DIR`` and their folder
  (:func:`private_opener`, profiles/ingest/storage.py);
- the SQLite backend creates the database file 0600 before SQLite opens it, and SQLite gives
  its WAL and shared-memory files the database file's mode (:func:`private_sqlite_files`,
  adapters/sqlite/base.py);
- at start-up the check below takes group and others' access away from ``var/`` and the
  SQLite files where an older run left it, and reports as an error what it could not make
  private. Django runs it with every management command (``make run``'s ``migrate``, the
  deploy check); gunicorn runs it before it serves (targetadmin/startup.py).

This module imports nothing of the project, so that settings may use it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

PRIVATE_DIRECTORY = 0o700
PRIVATE_FILE = 0o600
_OTHERS = 0o077  # the group's and everyone else's permission bits
OPEN_TO_OTHERS = "targetadmin.E001"


def private_directory(path: Path) -> None:
    """Create ``path`` (with its parents) readable by its owner only, unless it exists."""
    path.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)


def create_private_file(path: Path, text: str) -> None:
    """Write ``text`` to the new file ``path``, readable by its owner only, in a private
    directory; ``FileExistsError`` when it exists."""
    private_directory(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def private_opener(path: str, flags: int) -> int:
    """An ``opener`` for :func:`open` that creates the file readable by its owner only and
    takes others' access away from a file an older run left open."""
    descriptor = os.open(path, flags, PRIVATE_FILE)
    os.fchmod(descriptor, PRIVATE_FILE)
    return descriptor


def sqlite_files(database: Path) -> tuple[Path, Path, Path]:
    """The database file and the write-ahead log and shared-memory files SQLite keeps by it."""
    return database, Path(f"{database}-wal"), Path(f"{database}-shm")


def private_sqlite_files(database: Path) -> None:
    """Create the database file readable by its owner only before SQLite does (an empty file
    is an empty database), and make the files an older run left private."""
    with contextlib.suppress(FileExistsError, FileNotFoundError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    make_private(sqlite_files(database))


def make_private(paths: Iterable[Path]) -> None:
    """Take group and others' access away from each of ``paths`` that exists, where the
    process may (it owns the path, or is root)."""
    for path in paths:
        with contextlib.suppress(OSError):
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & _OTHERS:
                path.chmod(mode & ~_OTHERS)


def open_to_others(paths: Iterable[Path]) -> list[tuple[Path, int]]:
    """Each of ``paths`` that exists and that the group or others may use, with its mode."""
    found = []
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & _OTHERS:
                found.append((path, mode))
    return found


def local_state_paths(var_dir: Path, engine: str, name: str) -> list[Path]:
    """``var/``, and the database's files when it is a SQLite file (wherever it is)."""
    in_memory = name in ("", ":memory:") or name.startswith("file:")
    if engine.endswith("sqlite") and not in_memory:
        return [var_dir, *sqlite_files(Path(name))]
    return [var_dir]


def check(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[Any]:
    """The start-up check: ``var/`` and the SQLite files made private, and an error for each
    that is still open to other users of the host."""
    from django.conf import settings
    from django.core import checks

    database = settings.DATABASES["default"]
    paths = local_state_paths(settings.VAR_DIR, database["ENGINE"], str(database["NAME"]))
    make_private(paths)
    return [
        checks.Error(
            f"{path} is open to other users of this host (mode {mode:04o}): it holds the"
            " database, its sessions or keys.",
            hint=(
                f"chmod {PRIVATE_DIRECTORY if path.is_dir() else PRIVATE_FILE:o} {path}, as the"
                " user that runs targetadmin (docs/security.md#hardening)."
            ),
            id=OPEN_TO_OTHERS,
        )
        for path, mode in open_to_others(paths)
    ]
