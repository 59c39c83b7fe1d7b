"""After an erasure, the consumed part of her `graduated` partition is deleted from the broker.

`graduated` is FS's delivery channel, not the platform's record (membership's
own facts are, sealed). FS publishes personal data in the clear, so the only
way to make a replay of `graduated` yield nothing of hers is to drop what was
already applied: DeleteRecords on the one partition her student number maps to,
up to what membership has applied there — the position recorded with the
effects (alumni_kit/positions.py), or the committed offset if that is further
(the commit can lag the effects by a commit interval, never lead them).
Records after that offset were not yet applied and stay. The topic's retention (30 days) bounds the rest, e.g. when
the broker cannot be reached at erasure time.
"""

from __future__ import annotations

import logging

import asyncpg
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from alumni_kit.partitioning import partition_of
from alumni_kit.positions import applied_up_to

log = logging.getLogger(__name__)


async def forget_consumed(bootstrap: str, topic: str, group: str, key: str, pool: asyncpg.Pool) -> int | None:
    """Delete the records of `key`'s partition that `group` has applied; the new start offset."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="membership-erasure")
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
        partitions = sorted(p["partition"] for p in described["partitions"])
        where = TopicPartition(topic, partition_of(key.encode(), partitions))
        committed = (await admin.list_consumer_group_offsets(group, partitions=[where])).get(where)
        async with pool.acquire() as conn:
            applied = await applied_up_to(conn, group, topic, where.partition)
        up_to = max(applied or 0, committed.offset if committed is not None else 0)
        if up_to <= 0:
            return None
        await admin.delete_records({where: RecordsToDelete(up_to)}, timeout_ms=10_000)
        return int(up_to)
    finally:
        await admin.close()


async def forget_consumed_quietly(bootstrap: str, topic: str, group: str, key: str, pool: asyncpg.Pool) -> None:
    """forget_consumed, logging instead of failing: the erasure itself is already committed."""
    try:
        start = await forget_consumed(bootstrap, topic, group, key, pool)
    except Exception as exc:
        log.warning("could not delete consumed records of %s (%s); retention bounds them", topic, type(exc).__name__)
        return
    log.info("consumed records of one %s partition deleted (new start offset %s)", topic, start)
