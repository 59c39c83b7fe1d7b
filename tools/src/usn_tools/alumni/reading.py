"""Reading topics read-only: partitions assigned by hand, no consumer group, no commits.

Nothing here joins a group or commits an offset, so reading never moves any
service's position (docs/operations.md, `alumni`). Ranges are fixed when the read
starts (each partition's end offset then): a replay is a snapshot, it does not follow.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from usn_tools.alumni.output import progress

# Large enough for the biggest record a topic accepts (graduated: 4 MiB).
MAX_FETCH = 5 * 1024 * 1024


class TopicNotFoundError(LookupError):
    """The topic does not exist on this broker."""


@dataclass(frozen=True)
class Span:
    """Offsets [start, end) of one partition to read."""

    start: int
    end: int


@asynccontextmanager
async def reader(bootstrap: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer with no group id: it cannot commit, and no group sees it."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=MAX_FETCH,
        fetch_max_bytes=4 * MAX_FETCH,
        client_id="alumni-cli",
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def partitions_of(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    if topic not in await consumer.topics():
        raise TopicNotFoundError(topic)
    numbers = consumer.partitions_for_topic(topic) or set()
    return [TopicPartition(topic, p) for p in sorted(numbers)]


async def whole(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> dict[TopicPartition, Span]:
    """Each partition from its first record still kept to its end offset now."""
    starts = await consumer.beginning_offsets(partitions)
    ends = await consumer.end_offsets(partitions)
    return {tp: Span(starts[tp], ends[tp]) for tp in partitions}


async def offsets_at(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], ms: int
) -> dict[TopicPartition, int]:
    """Per partition, the first offset whose broker timestamp is at or after `ms`
    (the end offset where there is none): Kafka's offsets-for-times lookup."""
    found = await consumer.offsets_for_times({tp: ms for tp in partitions})
    ends = await consumer.end_offsets(partitions)
    return {tp: (hit.offset if (hit := found.get(tp)) is not None else ends[tp]) for tp in partitions}


async def read_spans(
    consumer: AIOKafkaConsumer, spans: dict[TopicPartition, Span], what: str, show_progress: bool | None
) -> list[ConsumerRecord]:
    """Every record of `spans`, in offset order per partition, with a progress bar."""
    todo = {tp: span for tp, span in spans.items() if span.start < span.end}
    records: list[ConsumerRecord] = []
    if not todo:
        return records
    consumer.assign(list(todo))
    for tp, span in todo.items():
        consumer.seek(tp, span.start)
    with progress(sum(s.end - s.start for s in todo.values()), what, show_progress) as bar:
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=1000)
            for tp, recs in batch.items():
                limit = todo.get(tp)
                if limit is None:
                    continue
                kept = [r for r in recs if r.offset < limit.end]
                records.extend(kept)
                bar.update(len(kept))
            for tp in list(todo):
                # A position at or past the end (records deleted below it count as read).
                if await consumer.position(tp) >= todo[tp].end:
                    del todo[tp]
                    consumer.pause(tp)
    return records
