"""Dead-letter routing: bad input goes to `<topic>.dlq` with the reason; the consumer moves on.

The original key, value and headers are kept, so an operator can inspect the
message, fix the cause and re-drive it to the original topic unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError
from aiokafka.structs import ConsumerRecord

log = logging.getLogger(__name__)

# Header names: a stable part of the DLQ's contract for operators and re-drive tools.
H_ERROR_CLASS = "dlq.error.class"
H_ERROR_KIND = "dlq.error.kind"
H_REASON = "dlq.error.reason"
H_TOPIC = "dlq.original.topic"
H_PARTITION = "dlq.original.partition"
H_OFFSET = "dlq.original.offset"
H_GROUP = "dlq.consumer.group"
# Set when the broker refused the dead letter whole: it then carries the headers only
# (the original stays on its topic, at the offset the headers name).
H_VALUE_OMITTED = "dlq.value.omitted"
DLQ_HEADERS = {H_ERROR_CLASS, H_ERROR_KIND, H_REASON, H_TOPIC, H_PARTITION, H_OFFSET, H_GROUP, H_VALUE_OMITTED}


@dataclass(frozen=True)
class Rejection:
    """Why a message cannot be processed: `kind` is a short label, `reason` a sentence."""

    error_class: str
    kind: str
    reason: str


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


async def dead_letter(
    producer: AIOKafkaProducer, record: ConsumerRecord[bytes, bytes], rejection: Rejection, group: str
) -> None:
    """Publish `record` to its DLQ and wait for the broker's acknowledgement."""
    headers = [(k, v) for k, v in (record.headers or ()) if k not in DLQ_HEADERS]
    headers += [
        (H_ERROR_CLASS, rejection.error_class.encode()),
        (H_ERROR_KIND, rejection.kind.encode()),
        (H_REASON, rejection.reason[:2000].encode()),
        (H_TOPIC, record.topic.encode()),
        (H_PARTITION, str(record.partition).encode()),
        (H_OFFSET, str(record.offset).encode()),
        (H_GROUP, group.encode()),
    ]
    try:
        await producer.send_and_wait(dlq_topic(record.topic), value=record.value, key=record.key, headers=headers)
    except (MessageSizeTooLargeError, RecordTooLargeError) as exc:
        # Refused for its size: a dead letter that can never be written must not stop the
        # partition, so it goes without the value, saying so, and the consumer moves on.
        omitted = [(H_VALUE_OMITTED, type(exc).__name__.encode())]
        await producer.send_and_wait(dlq_topic(record.topic), value=None, key=record.key, headers=headers + omitted)
    # Position and reason kind only: the value may hold personal data.
    log.warning("dead-lettered %s[%d]@%d: %s", record.topic, record.partition, record.offset, rejection.kind)
