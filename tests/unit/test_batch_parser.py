"""The kit's batch parser: FastStream's own, minus losing a batch to a header that is not UTF-8."""

from __future__ import annotations

import pytest
from aiokafka.structs import ConsumerRecord
from faststream.kafka.message import KafkaMessage
from faststream.kafka.parser import AioKafkaBatchParser

from alumni_kit.batch_parser import tolerant_batch_parser


def _record(offset: int, headers: tuple[tuple[str, bytes | None], ...]) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="graduated",
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"k",
        value=b"{}",
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=2,
        headers=headers,  # type: ignore[arg-type]
    )


async def test_a_header_that_is_not_utf8_or_has_no_value_keeps_its_batch_as_it_came() -> None:
    parser = AioKafkaBatchParser(KafkaMessage, None)
    records = (
        _record(0, (("origin", b"fs"),)),
        _record(1, (("origin", b"\xff\xfe"), ("empty", None))),
        _record(2, ()),
    )
    with pytest.raises((UnicodeDecodeError, AttributeError)):
        await parser.parse_batch(records)  # FastStream's own: the batch would be dropped unseen

    message = await tolerant_batch_parser(records, parser.parse_batch)
    assert message.raw_message is records  # the consumer sees (and dead-letters) what arrived
    assert message.raw_message[1].headers == (("origin", b"\xff\xfe"), ("empty", None))
    assert message.batch_headers[1] == {"origin": "\ufffd\ufffd", "empty": ""}
    assert message.body == [b"{}", b"{}", b"{}"]
