"""`alumni lag [GROUP]`: committed offset, end offset and lag per topic-partition.

The platform's consumer groups are `<service group>.<topic>` (one per consumed
topic, docs/architecture.md §5), e.g. `consent.member-registered`. A group is the
platform's when its name ends in `.` and a platform topic; GROUP selects one group
by its whole name, or every group of one service by the part before the topic.
A partition the group never committed counts from its first record kept (as the
service would start there); its committed offset shows as null.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from alumni_kit.topics import PLATFORM_TOPICS
from usn_tools.alumni.reading import reader, topic_partitions

CONSUMED = sorted({t.name for t in PLATFORM_TOPICS if not t.name.endswith(".dlq")}, key=len, reverse=True)


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def platform_topic_of(group: str) -> tuple[str, str] | None:
    """(service group, platform topic) of a group named `<service group>.<topic>`."""
    for topic in CONSUMED:
        if group.endswith("." + topic) and len(group) > len(topic) + 1:
            return group[: -len(topic) - 1], topic
    return None


def selected(group: str, wanted: str | None) -> bool:
    if wanted is None:
        return True
    parsed = platform_topic_of(group)
    return group == wanted or (parsed is not None and parsed[0] == wanted)


async def lags(bootstrap: str, prefix: str, wanted: str | None = None) -> list[PartitionLag]:
    """Every selected platform group's lag per partition of its topic (under `prefix`)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="alumni-cli")
    await admin.start()
    try:
        groups = sorted(str(g[0]) for g in await admin.list_consumer_groups())
        out: list[PartitionLag] = []
        existing = set(await admin.list_topics())
        async with reader(bootstrap) as consumer:
            for group in groups:
                parsed = platform_topic_of(group)
                if parsed is None or not selected(group, wanted) or prefix + parsed[1] not in existing:
                    continue
                topic = prefix + parsed[1]
                anywhere = {tp.topic for tp in await admin.list_consumer_group_offsets(group)}
                if anywhere and topic not in anywhere:
                    continue  # the same group name consumed a topic of another prefix
                partitions = (await topic_partitions(bootstrap, [topic]))[topic]
                committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
                starts = await consumer.beginning_offsets(partitions)
                ends = await consumer.end_offsets(partitions)
                for tp in partitions:
                    done = committed[tp].offset if tp in committed and committed[tp].offset >= 0 else None
                    base = starts[tp] if done is None else max(done, starts[tp])
                    out.append(PartitionLag(group, topic, tp.partition, done, ends[tp], max(0, ends[tp] - base)))
        return out
    finally:
        await admin.close()
