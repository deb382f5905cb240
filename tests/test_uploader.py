"""targetadmin-upload, run as scripts run it, against a live server (docs/uploader.md).

The server (tests/live_server.py: gunicorn and a task worker on a database of their own)
takes at most 10 rows and 4,000 bytes per batch file, so small files make several parts;
the tool is told the same limits. What was applied is read back through the fetch API,
and how many batches were made from the server's database.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests

from targetadmin_upload.display import Display
from tests.live_server import ROOT, LiveServer, live_server

SERVER_MAX_ROWS = 10
SERVER_MAX_BYTES = 4000
LIMITS = ["--max-rows", str(SERVER_MAX_ROWS), "--max-bytes", str(SERVER_MAX_BYTES)]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(
        tmp_path_factory.mktemp("live"),
        BATCH_MAX_ROWS=str(SERVER_MAX_ROWS),
        BATCH_MAX_BYTES=str(SERVER_MAX_BYTES),
        BULK_SUBMISSIONS_PER_MINUTE="1000",
    ) as server:
        yield server


def tool(server: str, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m targetadmin_upload --server … --client demo …``, output captured (no terminal)."""
    return _run(_command(server, *args), token=token)


def _command(server: str, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "targetadmin_upload",
        "--server",
        server,
        "--client",
        "demo",
        "--poll-interval",
        "0.1",
        *args,
    ]


def _environment(token: str | None) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name != "TARGETADMIN_TOKEN"}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT / "uploader" / "src"), env.get("PYTHONPATH")])
    )
    if token is not None:
        env["TARGETADMIN_TOKEN"] = token
    return env


def _run(command: list[str], *, token: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and the tool
        command, capture_output=True, text=True, env=_environment(token), timeout=120, check=False
    )


def fetch(live: LiveServer, third_party_id: str) -> dict[str, str]:
    response = requests.get(
        f"{live.url}/rest/v1/profiles/thirdPartyId/{quote(third_party_id, safe='')}",
        params={"client": "demo"},
        headers={"Authorization": f"Bearer {live.token}"},
        timeout=30,
    )
    assert response.status_code == 200, (third_party_id, response.text)
    return {name: item["value"] for name, item in response.json()["profileAttributes"].items()}


def write_csv(path: Path, header: list[str], rows: list[list[str]], *, bom: bool = False) -> Path:
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def new_batches(live: LiveServer, before: list[dict[str, Any]]) -> list[dict[str, Any]]:
    known = {batch["id"] for batch in before}
    return [batch for batch in live.batches() if batch["id"] not in known]


TRICKY = {
    "comma": "a,b,,c",
    "percent": "100% sure; %41 is not A; %zz; %2C",
    "plus": "1+1=2 ++",
    "quotes": "say \"hi\" and 'bye'",
    "unicode": "Zürich – 東京 😀",
    "lines": "first line\nsecond line\r\nthird",
    "blanks": "a  b\tc",
    "batch": "batch=thirdPartyId,x",
    "symbols": "&=?#/\\;:@!$*()[]{}<>|^`~",
}


def test_it_round_trips_a_csv_of_tricky_values_exactly(live: LiveServer, tmp_path: Path) -> None:
    ids = ["tricky-1", "tricky é@example.com", "tricky,comma"]
    rows = [[key, *TRICKY.values()] for key in ids]
    rows.append(["tricky-padded", *(f"  {value}\t" for value in ("padded",) * len(TRICKY))])
    path = write_csv(tmp_path / "tricky.csv", ["thirdPartyId", *TRICKY], rows, bom=True)

    result = tool(live.url, *LIMITS, "--create", str(path), token=live.token)

    assert result.returncode == 0, result.stderr
    assert "All 4 rows applied." in result.stdout
    for key in ids:
        assert fetch(live, key) == TRICKY
    # Blanks around a value are trimmed by the server, as by Adobe (docs/api.md#the-file).
    assert set(fetch(live, "tricky-padded").values()) == {"padded"}
    assert not (tmp_path / "tricky.csv.failed.csv").exists()
    assert not (tmp_path / "tricky.csv.upload-state.json").exists()


def test_it_takes_json_lines_whose_records_name_new_attributes(
    live: LiveServer, tmp_path: Path
) -> None:
    path = tmp_path / "profiles.jsonl"
    records = [
        {"thirdPartyId": f"jsonl-{i}", "attributes": {"tier": "gold", "n": i}} for i in range(12)
    ]
    records[11]["attributes"]["city"] = "New York, NY"
    path.write_text("\n".join(json.dumps(record) for record in records) + "\n")

    result = tool(live.url, *LIMITS, "--create", str(path), token=live.token)

    assert result.returncode == 0, result.stderr
    assert fetch(live, "jsonl-3") == {"tier": "gold", "n": "3"}
    assert fetch(live, "jsonl-11") == {"tier": "gold", "n": "11", "city": "New York, NY"}


def test_it_splits_a_file_over_the_row_limit_into_parts_the_server_accepts(
    live: LiveServer, tmp_path: Path
) -> None:
    rows = [[f"split-{i:02}", "gold", str(i)] for i in range(25)]
    path = write_csv(tmp_path / "split.csv", ["thirdPartyId", "tier", "n"], rows)
    before = live.batches()

    result = tool(live.url, *LIMITS, "--create", str(path), token=live.token)

    assert result.returncode == 0, result.stderr
    batches = new_batches(live, before)
    assert [batch["batch_size"] for batch in batches] == [10, 10, 5]
    assert [batch["successful_updates"] for batch in batches] == [10, 10, 5]
    assert len({batch["idempotency_key"] for batch in batches}) == 3
    assert "All 25 rows applied." in result.stdout
    assert fetch(live, "split-24") == {"tier": "gold", "n": "24"}
    # Not a terminal: progress comes as plain lines.
    assert "applied 25 of 25 rows" in result.stderr


def test_it_splits_on_the_byte_limit_first_when_rows_are_long(
    live: LiveServer, tmp_path: Path
) -> None:
    rows = [[f"long-{i}", "x" * 250, "y" * 250] for i in range(9)]
    path = write_csv(tmp_path / "long.csv", ["thirdPartyId", "a", "b"], rows)
    before = live.batches()

    result = tool(live.url, *LIMITS, "--create", str(path), token=live.token)

    assert result.returncode == 0, result.stderr
    assert [batch["batch_size"] for batch in new_batches(live, before)] == [7, 2]


def test_a_part_over_the_servers_own_limit_is_refused_with_advice(
    live: LiveServer, tmp_path: Path
) -> None:
    rows = [[f"over-{i}", "gold"] for i in range(15)]
    path = write_csv(tmp_path / "over.csv", ["thirdPartyId", "tier"], rows)
    before = live.batches()

    result = tool(live.url, "--max-rows", "20", "--create", str(path), token=live.token)

    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("targetadmin-upload: Part 1 (lines 2-16, 15 rows) refused:")
    assert "The batch file has more than 10 rows." in line
    assert "--max-rows and --max-bytes" in line
    assert new_batches(live, before) == []


def test_a_bad_token_exits_2_with_one_clear_line_and_sends_nothing(
    live: LiveServer, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "token.csv", ["thirdPartyId", "tier"], [["token-1", "gold"]])
    token_file = tmp_path / "token"
    token_file.write_text("tpa_" + "x" * 43 + "\n")
    before = live.batches()

    wrong = tool(live.url, "--token-file", str(token_file), str(path))
    missing = tool(live.url, str(path))
    on_command_line = tool(live.url, "--token", live.token, str(path))

    assert wrong.returncode == missing.returncode == on_command_line.returncode == 2
    assert wrong.stderr.splitlines() == [
        "targetadmin-upload: The server refused the token: The profile authentication token is"
        " invalid. Put the client's profile authentication token in the file named by"
        " --token-file, or in TARGETADMIN_TOKEN."
    ]
    assert missing.stderr.splitlines() == [
        "targetadmin-upload: The server wants a token: Authentication is required: send the"
        " profile authentication token in an 'Authorization: Bearer <token>' header. Put the"
        " client's profile authentication token in the file named by --token-file, or in"
        " TARGETADMIN_TOKEN."
    ]
    assert on_command_line.stderr.splitlines() == [
        "targetadmin-upload: --token is refused: a token on the command line lands in shell"
        " history and process lists. Put it in a file named by --token-file, or in"
        " TARGETADMIN_TOKEN."
    ]
    assert live.token not in on_command_line.stderr + on_command_line.stdout
    assert new_batches(live, before) == []
    assert not (tmp_path / "token.csv.failed.csv").exists()


def test_bad_rows_exit_1_and_are_written_with_their_input_line_key_and_reason(
    live: LiveServer, tmp_path: Path
) -> None:
    lines = ["thirdPartyId,tier,note", 'bad-01,gold,"multi', 'line value"', "bad-02,gold,ok,extra"]
    lines += ["bad-03,gold,ok", "", "bad/04,gold,ok"]
    lines += [f"bad-{i:02},gold,ok" for i in range(5, 15)]
    lines += ["bad-15,gold," + "v" * 300, "bad-16,gold,ok"]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")

    result = tool(live.url, *LIMITS, "--create", str(path), token=live.token)

    assert result.returncode == 1
    with (tmp_path / "bad.csv.failed.csv").open(newline="") as handle:
        assert list(csv.reader(handle)) == [
            ["line", "key", "reason"],
            ["4", "bad-02", "4 cells where the header has 3"],
            ["7", "bad/04", "thirdPartyId must not contain '+' or '/'"],
            ["18", "bad-15", "value of 'note' is longer than 256 characters"],
        ]
    assert result.stderr.splitlines()[-1] == (
        f"targetadmin-upload: 3 of 16 rows not applied: 3 failed, listed in {path}.failed.csv."
    )
    assert fetch(live, "bad-01") == {"tier": "gold", "note": "multi\nline value"}
    assert fetch(live, "bad-16") == {"tier": "gold", "note": "ok"}

    # Fixed and sent again: every row applied, and the old list of failures is gone.
    path.write_text("thirdPartyId,tier\nbad-02,gold\nbad-04,gold\n")
    again = tool(live.url, *LIMITS, "--create", str(path), token=live.token)
    assert again.returncode == 0, again.stderr
    assert not (tmp_path / "bad.csv.failed.csv").exists()


def test_a_row_that_is_not_utf_8_is_a_failed_row_and_a_header_that_is_not_refuses_the_file(
    live: LiveServer, tmp_path: Path
) -> None:
    rows = tmp_path / "latin1.csv"
    rows.write_bytes(
        b"thirdPartyId,city\nlatin-1,Paris\nlatin-2,Z\xfcrich\n"
        b'latin-3,"two\nlines \xff"\nlatin-4,Berlin\n'
    )
    header = tmp_path / "header.csv"
    header.write_bytes(b"thirdPartyId,Stra\xdfe\nlatin-5,x\n")

    sent, refused = (
        tool(live.url, *LIMITS, "--create", str(path), token=live.token) for path in (rows, header)
    )

    assert sent.returncode == 1, sent.stderr
    assert "Traceback" not in sent.stderr
    with (tmp_path / "latin1.csv.failed.csv").open(newline="") as handle:
        assert list(csv.reader(handle)) == [
            ["line", "key", "reason"],
            ["3", "latin-2", "not valid UTF-8"],
            ["4", "latin-3", "not valid UTF-8"],
        ]
    assert fetch(live, "latin-1") == {"city": "Paris"}
    assert fetch(live, "latin-4") == {"city": "Berlin"}
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        f"targetadmin-upload: {header}: the header row is not valid UTF-8."
    ]


def test_a_quote_never_closed_refuses_the_file_naming_its_line_before_any_part_is_sent(
    live: LiveServer, tmp_path: Path
) -> None:
    before = live.batches()
    short = tmp_path / "short.csv"
    short.write_bytes(b'thirdPartyId,note\nopen-1,"abc\nopen-2,ok\n')
    rows = "".join(f"open-{i},ok\n" for i in range(3, 30))  # three parts' worth before it
    long = tmp_path / "long.csv"
    long.write_bytes(f'thirdPartyId,note\n{rows}open-30,"a ""quoted"" word\n'.encode())

    results = [
        tool(live.url, *LIMITS, "--create", str(path), token=live.token) for path in (short, long)
    ]

    assert [result.returncode for result in results] == [2, 2]
    assert [result.stderr.splitlines()[-1] for result in results] == [
        f"targetadmin-upload: {path}, line {line}: the row starting here has a quoted value that"
        " is never closed, so it would take in every line to the end of the file."
        for path, line in ((short, 2), (long, 29))
    ]
    assert new_batches(live, before) == []


def test_failed_rows_a_spreadsheet_would_run_are_written_as_the_servers_csv_writes_them(
    live: LiveServer, tmp_path: Path
) -> None:
    path = tmp_path / "formulas.csv"
    path.write_bytes(
        b"thirdPartyId,tier\n"
        b"=1+1,gold,extra\n"  # failed by the tool: more cells than the header
        b"-1,gold,extra\n"
        b'"\tt",gold,extra\n'
        b'"\rr",gold,extra\n'
        b"@SUM(A1)/x,gold\n"  # failed by the server: a '/' in the id
        b"+2/x,gold\n"
    )

    result = tool(live.url, *LIMITS, "--create", str(path), token=live.token)

    assert result.returncode == 1, result.stderr
    with (tmp_path / "formulas.csv.failed.csv").open(newline="") as handle:
        lines_and_keys = [(line, key) for line, key, _ in list(csv.reader(handle))[1:]]
    assert lines_and_keys == [
        ("2", "'=1+1"),
        ("3", "'-1"),
        ("4", "'\tt"),
        ("5", "'\rr"),
        ("6", "'@SUM(A1)/x"),
        ("7", "'+2/x"),
    ]


def test_without_create_missing_profiles_are_counted_not_applied(
    live: LiveServer, tmp_path: Path
) -> None:
    tool(
        live.url,
        "--create",
        str(write_csv(tmp_path / "a.csv", ["thirdPartyId", "t"], [["v1-1", "a"]])),
        token=live.token,
    )
    path = write_csv(
        tmp_path / "v1.csv", ["thirdPartyId", "t"], [["v1-1", "b"], ["v1-nobody", "b"]]
    )

    result = tool(live.url, *LIMITS, str(path), token=live.token)

    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "targetadmin-upload: 1 of 2 rows not applied: 1 profiles not found (--create creates them)."
    )
    assert fetch(live, "v1-1") == {"t": "b"}


class Proxy:
    """Stands between the tool and the server; its Nth POST may lose its answer or hang.

    ``"drop"``: the request reaches the server, whose answer is thrown away (the connection
    closes without one). ``"hang"``: the request reaches the server and no answer ever comes.
    """

    def __init__(self, target: str, plan: dict[int, str]) -> None:
        self.plan = plan
        self.posts = 0
        self.hanging = threading.Event()
        release = self.release = threading.Event()
        lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                action = None
                if self.command == "POST":
                    with lock:
                        proxy.posts += 1
                        action = proxy.plan.get(proxy.posts)
                names = ("Authorization", "Content-Type", "Idempotency-Key")
                headers = {name: self.headers[name] for name in names if self.headers[name]}
                answer = requests.request(
                    self.command, target + self.path, data=body, headers=headers, timeout=60
                )
                if action == "hang":
                    proxy.hanging.set()
                    release.wait(60)
                if action:
                    self.close_connection = True
                    return
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "text/plain"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = forward

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_rerun_after_a_lost_answer_and_an_interruption_applies_no_part_twice(
    live: LiveServer, tmp_path: Path
) -> None:
    rows = [[f"resume-{i:02}", "gold", str(i)] for i in range(25)]
    path = write_csv(tmp_path / "resume.csv", ["thirdPartyId", "tier", "n"], rows)
    before = live.batches()
    # POST 1: part 1. POST 2: part 2, applied, its answer lost: the tool retries, and the
    # server answers the retry (POST 3) with the batch it has. POST 4: part 3, applied,
    # and the tool is interrupted (Ctrl-C) while it waits for the answer.
    flaky = Proxy(live.url, {2: "drop", 4: "hang"})
    try:
        first = subprocess.Popen(  # noqa: S603 - our own interpreter and the tool
            _command(flaky.url, *LIMITS, "--create", str(path)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_environment(live.token),
        )
        assert flaky.hanging.wait(60)
        first.send_signal(signal.SIGINT)
        _, interrupted = first.communicate(timeout=60)
    except BaseException:
        flaky.close()
        raise
    flaky.release.set()
    assert first.returncode == 130
    assert interrupted.splitlines()[-1].startswith(
        "targetadmin-upload: interrupted. 2 part(s) were sent"
    )
    assert "Run the same command again" in interrupted
    assert (tmp_path / "resume.csv.upload-state.json").exists()

    flaky.plan.clear()
    flaky.posts = 0
    try:
        rerun = tool(flaky.url, *LIMITS, "--create", str(path), token=live.token)
    finally:
        flaky.close()

    assert rerun.returncode == 0, rerun.stderr
    assert flaky.posts == 1  # parts 1 and 2 were known to be sent; part 3 was sent again…
    batches = new_batches(live, before)
    assert [batch["batch_size"] for batch in batches] == [10, 10, 5]  # …and applied once
    assert [batch["successful_updates"] for batch in batches] == [10, 10, 5]
    assert len({batch["idempotency_key"] for batch in batches}) == 3
    assert "All 25 rows applied." in rerun.stdout
    assert fetch(live, "resume-24") == {"tier": "gold", "n": "24"}
    assert not (tmp_path / "resume.csv.upload-state.json").exists()

    # Once more, straight to the server: every part is sent, and the server knows them all.
    again = tool(live.url, *LIMITS, "--create", str(path), token=live.token)
    assert again.returncode == 0, again.stderr
    assert new_batches(live, before) == batches


Answer = tuple[int, str, dict[str, str]]  # status, XML body, headers


def status_answer(batch_id: str = "stub-1", batch_size: str = "1") -> Answer:
    counts = "".join(f"<{name}>1</{name}>" for name in ("consumedCount", "successfulUpdates"))
    return (
        200,
        f"<response><batchId>{batch_id}</batchId><status>complete</status>"
        f"<batchSize>{batch_size}</batchSize>{counts}<profilesNotFound>0</profilesNotFound>"
        "<failedUpdates>0</failedUpdates></response>",
        {},
    )


def accepted_answer(batch_id: str = "stub-1") -> Answer:
    status_url = f"http://elsewhere/m2/demo/profile/batchStatus?batchId={quote(batch_id)}"
    return 200, f"<response><batchStatus>{status_url}</batchStatus></response>", {}


def message_answer(status: int, message: str, **headers: str) -> Answer:
    return status, f"<response><message>{message}</message></response>", headers


NO_CHECK_BATCH = message_answer(404, "No batch 'targetadmin-upload-check' for client demo.")


class StubServer:
    """Answers like targetadmin, or as oddly as a test says.

    The server check (a status request for ``targetadmin-upload-check``) is answered 404;
    other status requests with ``status(batch_id)``, and the Nth POST with ``accept(n)``.
    Each POST is recorded with its time and ``Idempotency-Key``.
    """

    def __init__(
        self,
        *,
        status: Callable[[str], Answer] = lambda batch_id: status_answer(batch_id),
        accept: Callable[[int], Answer] = lambda number: accepted_answer(),
        check: Answer = NO_CHECK_BATCH,
    ) -> None:
        self.posts: list[tuple[float, str]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self, found: Answer) -> None:
                status, body, headers = found
                self.send_response(status)
                content_type = "application/xml; charset=utf-8"
                for name, value in {"Content-Type": content_type, **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body.encode())))
                self.end_headers()
                self.wfile.write(body.encode())

            def do_GET(self) -> None:
                (batch_id,) = parse_qs(urlsplit(self.path).query)["batchId"]
                self.answer(check if batch_id == "targetadmin-upload-check" else status(batch_id))

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                stub.posts.append((time.monotonic(), self.headers["Idempotency-Key"]))
                self.answer(accept(len(stub.posts)))

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def run(self, path: Path) -> subprocess.CompletedProcess[str]:
        """The tool, sending ``path`` to this server; the server stops with it."""
        try:
            return tool(self.url, str(path))
        finally:
            self.server.shutdown()
            self.server.server_close()


def test_a_429_is_retried_with_the_same_key_after_the_wait_retry_after_asks(
    tmp_path: Path,
) -> None:
    limited = message_answer(
        429, "Too many bulk submissions: at most 50 a minute per client.", **{"Retry-After": "2"}
    )
    stub = StubServer(accept=lambda number: limited if number == 1 else accepted_answer())
    path = write_csv(tmp_path / "limited.csv", ["thirdPartyId", "tier"], [["u-1", "gold"]])

    result = stub.run(path)

    assert result.returncode == 0, result.stderr
    (first, first_key), (second, second_key) = stub.posts
    assert second - first >= 2
    assert first_key == second_key
    assert "429: Too many bulk submissions" in result.stderr


def test_a_count_that_is_not_a_number_is_a_protocol_error_exit_3(tmp_path: Path) -> None:
    stub = StubServer(status=lambda batch_id: status_answer(batch_id, batch_size="abc"))
    path = write_csv(tmp_path / "odd.csv", ["thirdPartyId", "tier"], [["u-1", "gold"]])

    result = stub.run(path)

    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        "targetadmin-upload: gave up: The status of batch stub-1 is not one targetadmin"
        " answers: batchSize is 'abc', not a whole number."
    )


def test_what_the_server_says_reaches_the_terminal_with_control_characters_escaped(
    tmp_path: Path,
) -> None:
    path = write_csv(tmp_path / "odd.csv", ["thirdPartyId", "tier"], [["u-1", "gold"]])
    clear_screen = "\x1b[2J"
    set_title = "\x1b]0;pwned\x07"
    refused = StubServer(check=message_answer(401, f"{clear_screen}Bad token{set_title}"))
    batch_id = f"stub{set_title}-1"
    retried = message_answer(503, f"Busy{clear_screen}", **{"Retry-After": "0"})
    accepted = StubServer(
        accept=lambda number: retried if number == 1 else accepted_answer(batch_id),
        status=lambda batch_id: status_answer(),  # XML cannot hold the control characters
    )

    results = [refused.run(path), accepted.run(path)]

    assert [result.returncode for result in results] == [2, 0]
    shown = "".join(result.stdout + result.stderr for result in results)
    assert "\x1b" not in shown
    assert "\x07" not in shown
    assert "The server wants a token: \\x1b[2JBad token\\x1b]0;pwned\\x07" in shown
    assert "503: Busy\\x1b[2J; retry 1" in shown
    assert "stub\\x1b]0;pwned\\x07-1" in shown


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_it_shows_one_bar_for_bytes_sent_and_one_for_rows_applied() -> None:
    terminal = Terminal()
    display = Display("auto", terminal, file_size=2_000_000)
    display.sent(1_000_000)
    display.rows(40_000, 100_000, estimated=True)
    display.close()

    shown = terminal.getvalue()
    assert "Sending" in shown
    assert "1.0 MB/2.0 MB" in shown
    assert "Applying" in shown
    assert "40,000/~100,000 rows" in shown


def test_elsewhere_it_writes_a_plain_line_every_five_seconds_with_rate_and_time_left() -> None:
    now = [0.0]
    log = io.StringIO()
    display = Display("auto", log, file_size=1_000_000, clock=lambda: now[0])
    display.rows(0, 10_000, estimated=False)
    now[0] = 4.0
    display.sent(500_000)
    display.rows(2_000, 10_000, estimated=False)
    assert log.getvalue() == ""
    now[0] = 5.0
    display.rows(2_500, 10_000, estimated=False)

    assert log.getvalue() == (
        "sent 500.0 kB of 1.0 MB (50%), 125.0 kB/s; applied 2,500 of 10,000 rows, 500 rows/s,"
        " about 15 s left\n"
    )
