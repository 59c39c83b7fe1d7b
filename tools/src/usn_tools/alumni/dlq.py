"""`alumni dlq list|show|redrive TOPIC`: dead letters, their reasons, and sending them back.

`list` and `show` print where each dead letter came from and why it was refused,
never its key or value (they may hold personal data: `graduated`'s key is a student
number). `redrive` publishes the original key, value and headers (the `dlq.*` ones
removed) back to the original topic, once its cause is fixed. A redriven message is
processed once: the consumer's inbox knows each event id it applied, so a message
redriven twice, or one that was in fact applied before, changes nothing again; one
that is still bad is dead-lettered again, never lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

from alumni_kit.dlq import (
    DLQ_HEADERS,
    H_ERROR_CLASS,
    H_ERROR_KIND,
    H_GROUP,
    H_OFFSET,
    H_PARTITION,
    H_REASON,
    H_TOPIC,
    H_VALUE_OMITTED,
)
from usn_tools.alumni.output import iso_ms
from usn_tools.alumni.reading import partitions_of, read_spans, reader, whole


@dataclass(frozen=True)
class DeadLetter:
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp: int = 0

    def header(self, name: str) -> str:
        return next((v.decode(errors="replace") for k, v in self.headers if k == name and v is not None), "")

    @property
    def origin(self) -> str:
        return f"{self.header(H_TOPIC)}[{self.header(H_PARTITION)}]@{self.header(H_OFFSET)}"

    def summary(self) -> dict[str, Any]:
        """What `list` prints: where from, which consumer, why. Never the key or value."""
        return {
            "dlq_offset": self.offset,
            "dead_lettered_at": iso_ms(self.timestamp),
            "original_topic": self.header(H_TOPIC),
            "original_partition": _int(self.header(H_PARTITION)),
            "original_offset": _int(self.header(H_OFFSET)),
            "consumer_group": self.header(H_GROUP),
            "error_class": self.header(H_ERROR_CLASS),
            "kind": self.header(H_ERROR_KIND),
            "reason": self.header(H_REASON),
        }

    def details(self) -> dict[str, Any]:
        """What `show` adds: the event's type and id (not personal), sizes and header names."""
        out = self.summary()
        out["value_bytes"] = None if self.value is None else len(self.value)
        out["value_omitted"] = self.header(H_VALUE_OMITTED) or None
        out["original_headers"] = sorted({k for k, _ in self.headers if k not in DLQ_HEADERS})
        event_type, event_id = _type_and_id(self.value, self.headers)
        out["event_type"], out["event_id"] = event_type, event_id
        return out


def dlq_name(topic: str) -> str:
    return topic if topic.endswith(".dlq") else f"{topic}.dlq"


async def read_dead_letters(bootstrap: str, dlq_topic: str, show_progress: bool | None = False) -> list[DeadLetter]:
    """Every message now in `dlq_topic` (a DLQ has one partition), oldest first."""
    partitions = await partitions_of(bootstrap, dlq_topic)
    async with reader(bootstrap) as consumer:
        records = await read_spans(consumer, await whole(consumer, partitions), dlq_topic, show_progress)
    records.sort(key=lambda r: (r.partition, r.offset))
    return [DeadLetter(r.offset, r.key, r.value, list(r.headers or ()), r.timestamp) for r in records]


async def redrive(bootstrap: str, letters: list[DeadLetter]) -> int:
    """Publish each letter to its original topic as it was first published; the count."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", max_request_size=5 * 1024 * 1024
    )
    await producer.start()
    try:
        for letter in letters:
            headers = [(k, v) for k, v in letter.headers if k not in DLQ_HEADERS]
            await producer.send_and_wait(letter.header(H_TOPIC), key=letter.key, value=letter.value, headers=headers)
    finally:
        await producer.stop()
    return len(letters)


def redrivable(letter: DeadLetter) -> bool:
    """A letter refused for its size carries no value: the original stays on its topic."""
    return not letter.header(H_VALUE_OMITTED) and bool(letter.header(H_TOPIC))


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _type_and_id(value: bytes | None, headers: list[tuple[str, bytes]]) -> tuple[str | None, str | None]:
    named = {k: v for k, v in headers if k in ("ce_type", "ce_id") and v is not None}
    if named:
        return named.get("ce_type", b"").decode(errors="replace"), named.get("ce_id", b"").decode(errors="replace")
    try:
        doc = json.loads(value) if value is not None else None
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(doc, dict):
        return None, None
    event_type, event_id = doc.get("type"), doc.get("id")
    return (
        event_type[:200] if isinstance(event_type, str) else None,
        event_id[:200] if isinstance(event_id, str) else None,
    )
