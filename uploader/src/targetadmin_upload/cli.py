"""``targetadmin-upload``: the command line (docs/uploader.md).

Exit status: 0 when every row was applied; 1 when some were not (FILE.failed.csv lists them);
2 when the run is refused (arguments, file, token, client); 3 when the server stayed
unreachable or busy through every retry; 130 when interrupted. Runs 1, 3 and 130 can be
repeated as they are: parts already sent are not applied again.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TextIO

from targetadmin_upload import __version__
from targetadmin_upload.batchfile import KEY_KINDS, MAX_BYTES, MAX_ROWS
from targetadmin_upload.display import MODES, Display, shown
from targetadmin_upload.errors import GaveUp, Refused
from targetadmin_upload.journal import Journal
from targetadmin_upload.parts import LineMap, Part, split
from targetadmin_upload.report import FailedRows, part_failed, part_rows, summary
from targetadmin_upload.server import Server
from targetadmin_upload.sources import FORMATS, Source, open_source

PROG = "targetadmin-upload"
TOKEN_VARIABLE = "TARGETADMIN_TOKEN"  # noqa: S105 (the variable's name, not a token)
KEY_FORMAT = "targetadmin-upload-1"
STALL_WARNING_SECONDS = 60.0
EXIT_APPLIED, EXIT_NOT_APPLIED, EXIT_REFUSED, EXIT_GAVE_UP, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
        return value

    return parse


def _at_least_zero(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 0 or more")
    return int(text)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        allow_abbrev=False,
        description=(
            "Bulk-update a targetadmin client's profiles from a CSV or JSON Lines file: the file"
            " is sent as batch files within the server's limits, each part's progress followed,"
            " and the rows that failed written to FILE.failed.csv."
        ),
        epilog=(
            f"The token comes from --token-file or the {TOKEN_VARIABLE} environment variable,"
            " never from the command line. Exit status: 0 every row applied, 1 some rows not"
            " applied, 2 refused, 3 gave up after retries, 130 interrupted. Docs: docs/uploader.md"
        ),
    )
    p.add_argument("file", metavar="FILE", help="a CSV file with a header row, or JSON Lines")
    p.add_argument(
        "--server", required=True, metavar="URL", help="e.g. https://targetadmin.example.com"
    )
    p.add_argument("--client", required=True, metavar="CODE", help="the client code, e.g. demo")
    p.add_argument(
        "--create",
        action="store_true",
        help="create profiles that do not exist (v2); without it only existing ones are updated",
    )
    p.add_argument("--key", choices=KEY_KINDS, help="the kind of id in the key column")
    p.add_argument(
        "--format", choices=sorted(FORMATS), help="default: jsonl for .jsonl/.ndjson, else csv"
    )
    p.add_argument("--token-file", metavar="PATH", help="a file holding the profile token")
    p.add_argument("--token", nargs="?", const="", help=argparse.SUPPRESS)
    p.add_argument(
        "--max-rows",
        type=_positive(int),
        default=MAX_ROWS,
        metavar="N",
        help=f"rows per batch file at most (default {MAX_ROWS:,})",
    )
    p.add_argument(
        "--max-bytes",
        type=_positive(int),
        default=MAX_BYTES,
        metavar="N",
        help=f"each batch file smaller than this (default {MAX_BYTES:,})",
    )
    p.add_argument(
        "--retries",
        type=_at_least_zero,
        default=8,
        metavar="N",
        help="retries of one request after a network failure, 429 or 503 (default 8)",
    )
    p.add_argument(
        "--poll-interval",
        type=_positive(float),
        default=2.0,
        metavar="SECONDS",
        help="how often batch statuses are read (default 2)",
    )
    p.add_argument(
        "--progress",
        choices=MODES,
        default="auto",
        help="bars on a terminal, log lines every few seconds otherwise (default auto)",
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="send every part again, even those sent within the last 24 hours",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def read_token(args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    if args.token is not None:
        raise Refused(
            "--token is refused: a token on the command line lands in shell history and process"
            f" lists. Put it in a file named by --token-file, or in {TOKEN_VARIABLE}."
        )
    if args.token_file:
        try:
            text = Path(args.token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or error
            raise Refused(f"Cannot read the token file {args.token_file}: {reason}.") from None
        where = f"The token file {args.token_file}"
    else:
        text = environ.get(TOKEN_VARIABLE, "").strip()
        where = TOKEN_VARIABLE
    if args.token_file and not text:
        raise Refused(f"{where} is empty.")
    if any(char.isspace() or not char.isprintable() for char in text):
        raise Refused(f"{where} holds more than one token (it has blanks or control characters).")
    return text or None


class Upload:
    """One run: parts read, sent and followed in order, their failed rows written in order."""

    def __init__(
        self,
        args: argparse.Namespace,
        source: Source,
        server: Server,
        display: Display,
        failed_rows: FailedRows,
    ) -> None:
        self.args = args
        self.source = source
        self.server = server
        self.display = display
        self.failed_rows = failed_rows
        self.journal = Journal(
            source.path.with_name(source.path.name + ".upload-state.json"), server.base_url
        )
        self.salt = secrets.token_hex(8) if args.fresh else ""
        self.parts: list[Part] = []
        self.finished = 0  # parts whose failed rows are written
        self.reading = True
        self.error: Exception | None = None
        self._poll_lock = threading.Lock()
        self._last_applied = -1
        self._last_change = time.monotonic()
        self._stall_noted = False

    def idempotency_key(self, part: Part, rows_digest: str) -> str:
        """The same for the same part of the same file to the same client and endpoint.

        The server's address is left out: the same server reached by another name (a proxy,
        https instead of http) must still recognise a part it has.
        """
        material = "\n".join(
            [
                KEY_FORMAT,
                self.server.client,
                "v2" if self.args.create else "v1",
                str(part.number),
                self.salt,
                hashlib.sha256(part.header).hexdigest(),
                rows_digest,
            ]
        )
        return f"{KEY_FORMAT}-{hashlib.sha256(material.encode()).hexdigest()}"

    def run(self) -> None:
        stop = threading.Event()
        poller = threading.Thread(target=self._poll_until, args=(stop,), daemon=True)
        poller.start()
        try:
            self._send_all()
        except BaseException:
            stop.set()  # the poller may be inside a request: it is not waited for
            raise
        finally:
            for part in self.parts:
                part.discard_rows()
        stop.set()
        poller.join()
        while self.finished < len(self.parts):
            self.poll()
            self._raise_poll_error()
            self._finish_ready()
            if self.finished < len(self.parts):
                time.sleep(self.args.poll_interval)

    def _send_all(self) -> None:
        for part in split(
            self.source,
            max_rows=self.args.max_rows,
            max_bytes=self.args.max_bytes,
            key_of=self.idempotency_key,
        ):
            self.parts.append(part)
            if part.rows:
                self._send(part)
            self._raise_poll_error()
            self._finish_ready()
        self.reading = False
        self.display.sent(self.source.size)

    def _send(self, part: Part) -> None:
        what = f"Part {part.number} (lines {part.first_line}-{part.last_line}, {part.rows:,} rows)"
        batch_id = self.journal.batch_id(part.idempotency_key)
        if batch_id:
            self.display.note(f"{what} was sent before as batch {batch_id}; following it.")
        else:
            batch_id = self.server.submit(
                lambda: self._counted(part),
                part.size,
                create=self.args.create,
                idempotency_key=part.idempotency_key,
                what=what,
            )
            self.journal.record(part.idempotency_key, batch_id)
        part.batch_id, part.status = batch_id, "incomplete"
        part.discard_rows()
        self.display.sent(part.input_end)
        self._show_rows()

    def _counted(self, part: Part) -> Iterator[bytes]:
        span = part.input_end - part.input_start
        sent = 0
        for chunk in part.body():
            yield chunk
            sent += len(chunk)
            self.display.sent(part.input_start + span * sent / part.size)

    def _poll_until(self, stop: threading.Event) -> None:
        while not stop.wait(self.args.poll_interval):
            try:
                self.poll()
            except (Refused, GaveUp) as error:
                self.error = error
                return

    def poll(self) -> None:
        """Read the status of every part sent and not finished, once."""
        with self._poll_lock:
            for part in list(self.parts):
                if part.batch_id and not part.final:
                    status = self.server.status(part.batch_id)
                    part.consumed, part.successful = status.consumed, status.successful
                    part.not_found, part.failed = status.not_found, status.failed
                    part.status = status.status  # last: a final status means final counts
            self._show_rows()

    def _show_rows(self) -> None:
        sent = sum(part.rows for part in self.parts)
        applied = sum(part.consumed for part in self.parts)
        total = sent
        read = self.parts[-1].input_end if self.parts else 0  # the bytes those rows came from
        if self.reading and read:
            total = max(sent, round(sent * self.source.size / read))
        self.display.rows(applied, total, estimated=self.reading)
        now = time.monotonic()
        if applied != self._last_applied:
            self._last_applied, self._last_change, self._stall_noted = applied, now, False
        elif (
            not self._stall_noted
            and now - self._last_change >= STALL_WARNING_SECONDS
            and any(part.batch_id and not part.final for part in self.parts)
        ):
            self._stall_noted = True
            self.display.note(
                f"No row applied for {STALL_WARNING_SECONDS:.0f} s: is the server's task worker"
                " (manage.py db_worker) running? Still waiting."
            )

    def _raise_poll_error(self) -> None:
        if self.error is not None:
            raise self.error

    def _finish_ready(self) -> None:
        """Write the failed rows of the parts that are done, in the input's order."""
        while self.finished < len(self.parts) and self.parts[self.finished].final:
            part = self.parts[self.finished]
            rows: list[tuple[int | None, str, str]] = [
                (failure.line, failure.key, failure.reason) for failure in part.failures
            ]
            if part.failed:
                for failure in self.server.failures(part.batch_id):
                    line = None if failure.line is None else part.lines[failure.line]
                    rows.append((line, failure.key, failure.reason))
            if part.status == "stuck":
                reason = (
                    "not applied: the server gave up on the batch (stuck);"
                    " send it again with --fresh"
                )
                for batch_line in range(part.consumed + 2, part.rows + 2):
                    rows.append((part.lines[batch_line], "", reason))
            rows.sort(key=lambda row: row[0] or 0)
            self.failed_rows.write(rows)
            part.failures, part.lines = [], LineMap()  # written: no longer held
            self.finished += 1
            if part.status != "unsent":
                self.display.note(
                    f"Part {part.number}: {part.status}, {part.successful:,} applied,"
                    f" {part.not_found:,} not found, {part_failed(part):,} failed"
                )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run(args, sys.stdout, sys.stderr, os.environ)


def run(
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
    environ: Mapping[str, str],
) -> int:
    upload: Upload | None = None
    display: Display | None = None
    try:
        token = read_token(args, environ)
        if not args.server.startswith(("http://", "https://")):
            raise Refused(f"--server must be an http:// or https:// URL, not {args.server!r}.")
        source = open_source(Path(args.file), args.format, args.key)
        display = Display(args.progress, err, file_size=source.size)
        server = Server(
            args.server, args.client, token, retries=args.retries, on_retry=display.note
        )
        server.check()
        upload = Upload(args, source, server, display, FailedRows(source.path))
        upload.run()
    except (Refused, GaveUp, KeyboardInterrupt, OSError) as error:
        if display is not None:
            display.close(final_line=False)
        if upload is not None:
            upload.failed_rows.abandon()
        if isinstance(error, Refused):
            return _stop(err, EXIT_REFUSED, _with_parts_sent(str(error), upload))
        if isinstance(error, GaveUp):
            return _stop(err, EXIT_GAVE_UP, _with_parts_sent(f"gave up: {error}.", upload))
        if isinstance(error, OSError):  # the temporary files' disk is full, for one
            return _stop(err, EXIT_GAVE_UP, _with_parts_sent(f"stopped: {error}.", upload))
        return _stop(err, EXIT_INTERRUPTED, _with_parts_sent("interrupted.", upload))
    display.close()
    return _report(upload, out, err)


def _stop(err: TextIO, status: int, reason: str) -> int:
    print(f"{PROG}: {shown(reason)}", file=err, flush=True)
    return status


def _with_parts_sent(reason: str, upload: Upload | None) -> str:
    sent = [part for part in upload.parts if part.batch_id] if upload else []
    if not sent:
        return reason
    return (
        f"{reason} {len(sent):,} part(s) were sent, the last as batch {sent[-1].batch_id}."
        " Run the same command again to go on: parts already sent are not applied twice."
    )


def _report(upload: Upload, out: TextIO, err: TextIO) -> int:
    failed_rows = upload.failed_rows
    failed_rows.finish()
    upload.journal.remove()
    summary(upload.parts, out)
    rows = sum(part_rows(part) for part in upload.parts)
    not_applied = sum(part_rows(part) - part.successful for part in upload.parts)
    if not not_applied:
        print(f"All {rows:,} rows applied.", file=out, flush=True)
        return EXIT_APPLIED
    details = []
    if failed_rows.count:
        details.append(f"{failed_rows.count:,} failed, listed in {failed_rows.path}")
    if failed_rows.problem:
        details.append(failed_rows.problem)
    not_found = sum(part.not_found for part in upload.parts)
    if not_found:
        details.append(f"{not_found:,} profiles not found (--create creates them)")
    reason = f"{not_applied:,} of {rows:,} rows not applied: {'; '.join(details)}."
    return _stop(err, EXIT_NOT_APPLIED, reason)
