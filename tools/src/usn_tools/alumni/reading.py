"""Reading topics read-only: partitions assigned by hand, no consumer group, no commits.

Nothing here joins a group or commits an offset, so reading never moves any
service's position (docs/operations.md, `alumni`). Ranges are fixed when the read
starts (each partition's end offset then): a replay is a snapshot, it does not follow.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
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
        await _stop(consumer)


async def _stop(consumer: AIOKafkaConsumer) -> None:
    """Stop the consumer. aiokafka's stop() soon after start() (nothing assigned yet) can
    raise the CancelledError of its own internal task: that one is not ours to pass on."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


async def partitions_of(bootstrap: str, topic: str) -> list[TopicPartition]:
    """The topic's partitions (TopicNotFoundError when there is no such topic)."""
    return (await topic_partitions(bootstrap, [topic]))[topic]


async def existing_topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="alumni-cli")
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def topic_partitions(bootstrap: str, topics: list[str]) -> dict[str, list[TopicPartition]]:
    """The partitions of each of `topics`, in order; TopicNotFoundError names the first one missing.
    (A consumer's metadata cache holds only topics it subscribed to, so the admin API is asked.)"""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="alumni-cli")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        for topic in topics:
            if topic not in existing:
                raise TopicNotFoundError(topic)
        described = await admin.describe_topics(topics) if topics else []
    finally:
        await admin.close()
    return {
        str(d["topic"]): sorted(TopicPartition(str(d["topic"]), int(p["partition"])) for p in d["partitions"])
        for d in described
    }


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
