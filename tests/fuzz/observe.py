"""What the fuzz suite reads back: where each message landed, the dead letters, consumer lag."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from alumni_kit.dlq import H_ERROR_KIND, H_GROUP, H_OFFSET, H_PARTITION, H_REASON
from tests.fuzz.messages import Message


async def publish_all(bootstrap: str, prefix: str, messages: Iterable[Message]) -> None:
    """Send with a plain producer, as another system would; record each message's partition and offset."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        pending = [
            (m, await producer.send(prefix + m.topic, key=m.key, value=m.value, headers=m.headers)) for m in messages
        ]
        for message, future in pending:
            meta = await future
            message.partition, message.offset = meta.partition, meta.offset
    finally:
        await producer.stop()


@dataclass(frozen=True)
class Letter:
    kind: str
    reason: str


async def dead_letters(bootstrap: str, dlq_topic: str) -> dict[tuple[str, int, int], Letter]:
    """{(consumer group, original partition, original offset): why}, for one DLQ (one partition)."""
    # Fetches large enough for the 1 MB values the fuzzer sends (the default is 1 MiB a partition).
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=8 * 1024 * 1024
    )
    await consumer.start()
    out: dict[tuple[str, int, int], Letter] = {}
    try:
        tp = TopicPartition(dlq_topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                for r in records:
                    headers = {k: v.decode(errors="replace") for k, v in r.headers}
                    where = (headers[H_GROUP], int(headers[H_PARTITION]), int(headers[H_OFFSET]))
                    out[where] = Letter(headers.get(H_ERROR_KIND, ""), headers.get(H_REASON, ""))
        return out
    finally:
        await consumer.stop()


async def lag(bootstrap: str, groups: dict[str, str]) -> dict[str, int]:
    """{group: records on its topic not yet committed} for {group: topic}; a group that never
    committed on a partition is behind by all of that partition."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        out = {}
        for group, topic in groups.items():
            [described] = await admin.describe_topics([topic])
            partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
            ends = await consumer.end_offsets(partitions)
            committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
            out[group] = sum(
                end - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0)
                for tp, end in ends.items()
            )
        return out
    finally:
        await consumer.stop()
        await admin.close()


async def wait_for_no_lag(bootstrap: str, groups: dict[str, str], timeout: float) -> dict[str, int]:
    """Poll until every group has committed to the end of its topic; the last lag seen."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        behind = await lag(bootstrap, groups)
        if not any(behind.values()) or asyncio.get_running_loop().time() > deadline:
            return behind
        await asyncio.sleep(1)
