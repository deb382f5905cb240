"""A batch's parser process is safe to start and stop from several threads of one process
at once, as the writers of batches run by an immediate task backend in threads do."""

from __future__ import annotations

import threading
import time

from profiles.ingest.parser_process import ParserProcess

THREADS = 8
PARSERS_EACH = 20
# A parser ends within milliseconds of its writer closing the pipe; one that does not is
# killed after five seconds.
ENDS_SOON_SECONDS = 2.5


def test_parsers_of_many_threads_at_once_each_start_answer_and_end() -> None:
    failures: list[BaseException] = []

    def parse_again_and_again() -> None:
        try:
            for _ in range(PARSERS_EACH):
                with ParserProcess(len) as parser:
                    parser.submit("abc")
                    assert parser.result() == 3
        except BaseException as failure:
            failures.append(failure)

    threads = [threading.Thread(target=parse_again_and_again) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []


def test_a_parser_ends_with_its_writer_while_a_later_writers_parser_runs() -> None:
    first = ParserProcess(len).__enter__()
    with ParserProcess(len) as later:
        started = time.monotonic()
        first.__exit__(None, None, None)
        took = time.monotonic() - started

        later.submit("abcd")
        assert later.result() == 4
    assert took < ENDS_SOON_SECONDS
