"""CloudEvents' Kafka binding has two content modes; every consumed topic takes both.

Events are made with the official CloudEvents SDK, as another USN system would."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from cloudevents.core.bindings.kafka import to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent

from tests.e2e.graduations import graduation
from usn_schemas.envelope import ContractError, is_binary_mode, parse_envelope, structured_from_binary
from usn_schemas.graduated import GraduatedV1
from usn_schemas.registry import TOPIC_CONTRACTS

GRADUATED = TOPIC_CONTRACTS["graduated"]


def sdk_event(doc: dict[str, Any], **extra: Any) -> SdkEvent:
    attributes = {k: v for k, v in doc.items() if k != "data"}
    attributes["time"] = datetime(2025, 1, 1, tzinfo=UTC)
    return SdkEvent(attributes={**attributes, **extra}, data=doc["data"])


def test_a_binary_mode_graduation_parses_like_the_structured_one() -> None:
    doc = graduation("sdk-1", "5551234", given_name="Åsmund")
    binary = to_binary(sdk_event(doc), JSONFormat())
    headers = list(binary.headers.items())
    assert is_binary_mode(headers)
    from_binary = parse_envelope(structured_from_binary(headers, binary.value), GRADUATED)
    structured = to_structured(sdk_event(doc), JSONFormat())
    assert not is_binary_mode(list(structured.headers.items()))
    from_structured = parse_envelope(structured.value, GRADUATED)
    assert isinstance(from_binary, GraduatedV1)
    assert from_binary == from_structured
    assert from_binary.data.given_name == "Åsmund"


def test_binary_mode_carries_the_sequence_extension() -> None:
    doc = graduation("sdk-2", "5551235")
    binary = to_binary(sdk_event(doc, sequence="7"), JSONFormat())
    event = parse_envelope(structured_from_binary(list(binary.headers.items()), binary.value), GRADUATED)
    assert event.sequence == 7


@pytest.mark.parametrize(
    ("headers", "value", "kind"),
    [
        ([("ce_specversion", b"1.0"), ("ce_type", b"\xff\xfe")], b"{}", "not-cloudevent"),
        ([("ce_specversion", b"1.0"), ("content-type", b"application/json")], b"{not json", "not-json"),
        ([("ce_specversion", b"1.0"), ("ce_type", b"no.usn.fs.graduated.v1")], b"{}", "invalid"),
    ],
)
def test_a_broken_binary_mode_event_says_why(headers: list[tuple[str, bytes]], value: bytes, kind: str) -> None:
    with pytest.raises(ContractError) as caught:
        parse_envelope(structured_from_binary(headers, value), GRADUATED)
    assert caught.value.kind == kind
