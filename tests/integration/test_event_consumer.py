"""The kit's EventConsumer on the real database and broker: a poison event that
fails in the handler is dead-lettered alone; the rest of its batch is applied once."""

from __future__ import annotations

import json

import asyncpg
import pytest
from aiokafka.structs import ConsumerRecord

from alumni_kit.consumer import EventConsumer, Incoming
from alumni_kit.db import KIT_MIGRATIONS, Conn, apply_migrations
from alumni_kit.dlq import H_ERROR_KIND, H_REASON
from alumni_kit.kafka import idempotent_producer
from alumni_kit.metrics import KitMetrics
from tests.e2e.graduations import graduation
from tests.stack import Stack, read_topic
from usn_schemas.registry import TOPIC_CONTRACTS

pytestmark = pytest.mark.real


def _record(topic: str, offset: int, event: dict[str, object]) -> ConsumerRecord:  # type: ignore[type-arg]
    value = json.dumps(event).encode()
    return ConsumerRecord(topic, 0, offset, 0, 0, b"k", value, None, len(b"k"), len(value), ())


async def test_a_handler_failure_dead_letters_only_the_event_at_fault(
    stack: Stack, topic_prefix: str, membership_db: str
) -> None:
    pool = await asyncpg.create_pool(stack.service_dsn("membership", membership_db), min_size=1, max_size=2)
    assert pool is not None
    async with pool.acquire() as conn:
        await apply_migrations(conn, {"kit": KIT_MIGRATIONS})
        await conn.execute("CREATE TABLE applied (event_id text PRIMARY KEY)")

    async def handler(conn: Conn, events: list[Incoming]) -> None:
        for e in events:
            if e.event.subject == "666":
                raise ValueError("this graduation breaks a rule the contract does not know")
            await conn.execute("INSERT INTO applied VALUES ($1)", e.event.id)

    producer = idempotent_producer(stack.bootstrap, "test")
    await producer.start()
    topic = topic_prefix + "graduated"
    consumer = EventConsumer(
        topic=topic,
        group="g",
        contracts=TOPIC_CONTRACTS["graduated"],
        handler=handler,
        pool=pool,
        producer=producer,
        metrics=KitMetrics(),
    )
    events = [graduation(f"e{i}", "666" if i == 2 else f"70{i}") for i in range(5)]
    try:
        await consumer.handle_batch([_record(topic, i, e) for i, e in enumerate(events)])
        await consumer.handle_batch([_record(topic, i, e) for i, e in enumerate(events)])  # redelivered
    finally:
        await producer.stop()

    applied = {r[0] for r in await pool.fetch("SELECT event_id FROM applied")}
    assert applied == {"e0", "e1", "e3", "e4"}
    dead = await read_topic(stack.bootstrap, topic + ".dlq", 2)
    assert [dict(d.headers)[H_ERROR_KIND] for d in dead] == [b"processing-error", b"processing-error"]
    assert b"ValueError" in dict(dead[0].headers)[H_REASON]
    assert json.loads(dead[0].value)["id"] == "e2"
    await pool.close()
