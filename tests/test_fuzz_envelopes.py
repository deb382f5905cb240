"""Property-based tests of the wire envelopes: every answer parses, whatever it echoes.

Error messages, failed rows' ids and their reasons echo what was uploaded: control
characters, NUL, lone surrogates, U+FFFE, markup. The rules:

- every XML answer (``xml_error``, ``xml_response(xml_elements(…))``, the batch status
  document with its failed rows, streamed) parses with ``xml.etree``, and gives back the
  text, with only what XML 1.0 cannot carry shown as U+FFFD;
- every JSON answer (``rest_error``, ``json_api_error``, ``adobe_error``) parses with
  ``json.loads`` and gives back the text as it was.

``make test`` runs a few examples of each (hypothesis profile ``ci``); ``make fuzz`` runs
many more (profile ``fuzz``).
"""

from __future__ import annotations

import json
import re
from itertools import count
from xml.etree import ElementTree

from django.http import HttpResponse
from django.http.response import HttpResponseBase
from hypothesis import example, given
from hypothesis import strategies as st

from profiles.api.batch_documents import status_xml
from profiles.api.envelopes import (
    Answer,
    adobe_error,
    json_api_error,
    rest_error,
    xml_elements,
    xml_error,
    xml_response,
)
from profiles.ingest.batches import ApiVersion, Batch, BatchFailure
from profiles.ingest.pipeline import Outcome, RowFailure
from profiles.models import Client
from profiles.rules.errors import ErrorCode, ProductError

# Any code point, lone surrogates included, and often one XML cannot carry or must escape.
NOT_XML = "\x00\x01\x08\x0b\x0c\x1b\x1f\ud800\udbff\udc00\udfff\ufffe\uffff"
MARKUP = "<>&'\"]]>\t\r\n\r\n\x7f\x85\u2028\ufeff\ufffd\U0001f600"
hostile_text = st.text(
    alphabet=st.characters(exclude_categories=()) | st.sampled_from(NOT_XML + MARKUP),
    max_size=60,
)
codes = st.sampled_from(list(ErrorCode))
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_batch_numbers = count()


def as_xml_gives_back(text: str) -> str:
    """What a parser reads back from ``text`` written into an XML answer."""
    return _NOT_XML.sub("\ufffd", text)


def content_of(response: HttpResponseBase | Answer) -> bytes:
    if isinstance(response, Answer):
        return response.body
    if response.streaming:
        return b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert isinstance(response, HttpResponse)
    return response.content


def parsed_xml(response: HttpResponseBase | Answer) -> ElementTree.Element:
    root = ElementTree.fromstring(content_of(response))  # noqa: S314 (our own answer)
    assert root.tag == "response"
    return root


@given(code=codes, message=hostile_text)
@example(ErrorCode.BAD_ID, "pcId 'ctl\x01id' contains control characters")
@example(ErrorCode.BAD_REQUEST, "\x00\ud800\uffff\r\n]]>")
def test_every_error_envelope_parses_whatever_its_message_holds(
    code: ErrorCode, message: str
) -> None:
    error = ProductError(code, message)
    assert parsed_xml(xml_error(error)).findtext("message") == as_xml_gives_back(message)
    assert json.loads(content_of(rest_error(error)))["message"] == message
    assert json.loads(content_of(json_api_error(error)))["error"]["message"] == message
    adobe = adobe_error(error, request_id="r-1", content_type="application/json")
    assert json.loads(content_of(adobe))["errors"][0]["message"] == message


@given(values=st.lists(hostile_text, min_size=1, max_size=5))
@example(["ctl\x01id", "\x00\x0b\x1f", "\ud800\udfff", "\ufffe\uffff", "a\r\nb\rc"])
def test_an_xml_answer_parses_whatever_its_fields_hold(values: list[str]) -> None:
    fields = [(f"field{number}", value) for number, value in enumerate(values)]
    root = parsed_xml(xml_response(xml_elements(fields)))
    assert [child.text or "" for child in root] == [as_xml_gives_back(value) for value in values]


@given(failed=st.lists(st.tuples(hostile_text, hostile_text), max_size=6))
@example([("ctl\x01id", "pcId contains control characters"), ("\x00\ud800", "\uffff\r")])
def test_the_batch_status_document_parses_whatever_its_failed_rows_hold(
    demo: Client, failed: list[tuple[str, str]]
) -> None:
    batch = Batch.objects.create(
        id=f"demo-1700000000000-{next(_batch_numbers):08d}",
        client=demo,
        api_version=ApiVersion.V1,
        batch_size=len(failed),
        create_missing=False,
    )
    outcome = Outcome(
        failures=[
            RowFailure(position, profile_id, ErrorCode.BAD_ID, message)
            for position, (profile_id, message) in enumerate(failed, 2)
        ]
    )
    assert batch.record_chunk(outcome, start_offset=0, end_offset=1, next_position=2)
    root = parsed_xml(status_xml(batch, details=True))
    stored = BatchFailure.objects.filter(batch=batch).order_by("position")
    assert [
        (profile.findtext("id"), profile.findtext("message")) for profile in root.iter("profile")
    ] == [
        (as_xml_gives_back(row.profile_id), as_xml_gives_back(row.describe(batch.api_version)))
        for row in stored
    ]
    assert len(stored) == len(failed)
