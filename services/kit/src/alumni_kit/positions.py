"""The positions a consumer has applied, recorded with the effects in one transaction.

The Kafka offset is committed after the effects, and only every commit
interval: it may lag what was applied. This table never does. A record at or
past `next_offset` may not be applied yet; every record before it was applied,
dead-lettered or skipped.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka.structs import ConsumerRecord

from alumni_kit.db import Conn


async def record_positions(conn: Conn, consumer: str, records: Iterable[ConsumerRecord]) -> None:
    """Record that `consumer` applied `records` (call in the transaction that applies them)."""
    reached: dict[tuple[str, int], int] = {}
    for r in records:
        where = (r.topic, r.partition)
        reached[where] = max(reached.get(where, 0), r.offset + 1)
    if not reached:
        return
    # Never backwards: a redelivered older batch (after a rebalance) leaves the position as it is.
    await conn.execute(
        """INSERT INTO consumer_positions (consumer, topic, partition, next_offset)
           SELECT $1, t, p, o FROM unnest($2::text[], $3::int[], $4::bigint[]) AS r(t, p, o)
           ON CONFLICT (consumer, topic, partition) DO UPDATE
             SET next_offset = greatest(consumer_positions.next_offset, EXCLUDED.next_offset), updated_at = now()""",
        consumer,
        [t for t, _ in reached],
        [p for _, p in reached],
        list(reached.values()),
    )


async def applied_up_to(conn: Conn, consumer: str, topic: str, partition: int) -> int | None:
    """The first offset of `topic`/`partition` that `consumer` has not applied, if it applied any."""
    offset: int | None = await conn.fetchval(
        "SELECT next_offset FROM consumer_positions WHERE consumer = $1 AND topic = $2 AND partition = $3",
        consumer,
        topic,
        partition,
    )
    return offset
