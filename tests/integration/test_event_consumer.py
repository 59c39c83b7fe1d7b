"""The kit's EventConsumer on the real database and broker: a poison event that
fails in the handler is dead-lettered alone after a bounded number of attempts;
the rest of its batch is applied once, and the positions reached are recorded
with the effects."""

from __future__ import annotations

import json

import asyncpg
import pytest
from aiokafka.structs import ConsumerRecord

from alumni_kit.consumer import BatchHandler, EventConsumer, Incoming
from alumni_kit.db import KIT_MIGRATIONS, Conn, apply_migrations
from alumni_kit.dlq import H_ERROR_KIND, H_REASON
from alumni_kit.kafka import idempotent_producer
from alumni_kit.metrics import KitMetrics
from alumni_kit.shredding import KeyId, KeyRing, SubjectKey, new_key, seal_event
from tests.e2e.graduations import graduation
from tests.stack import Stack, read_topic
from usn_schemas.ids import new_id
from usn_schemas.member import MemberRegisteredV1, MemberSnapshot
from usn_schemas.registry import TOPIC_CONTRACTS

pytestmark = pytest.mark.real


def _record(topic: str, offset: int, event: dict[str, object]) -> ConsumerRecord:  # type: ignore[type-arg]
    value = json.dumps(event).encode()
    return ConsumerRecord(topic, 0, offset, 0, 0, b"k", value, None, len(b"k"), len(value), ())


async def test_a_handler_failure_dead_letters_only_the_event_at_fault(
    stack: Stack, topic_prefix: str, membership_db: str
) -> None:
    pool = await _pool_with_applied_table(stack, membership_db)

    async def handler(conn: Conn, events: list[Incoming]) -> None:
        for e in events:
            if e.event.subject == "666":
                raise ValueError("this graduation breaks a rule the contract does not know")
            await conn.execute("INSERT INTO applied VALUES ($1)", e.event.id)

    topic = topic_prefix + "graduated"
    events = [graduation(f"e{i}", "666" if i == 2 else f"70{i}") for i in range(5)]
    batch = [_record(topic, i, e) for i, e in enumerate(events)]
    await _handled(stack, pool, topic, handler, [batch, batch])  # the second: redelivered

    applied = {r[0] for r in await pool.fetch("SELECT event_id FROM applied")}
    assert applied == {"e0", "e1", "e3", "e4"}
    dead = await read_topic(stack.bootstrap, topic + ".dlq", 2)
    assert [dict(d.headers)[H_ERROR_KIND] for d in dead] == [b"processing-error", b"processing-error"]
    assert b"ValueError" in dict(dead[0].headers)[H_REASON]
    assert json.loads(dead[0].value)["id"] == "e2"
    await pool.close()


async def _handled(
    stack: Stack,
    pool: asyncpg.Pool,
    topic: str,
    handler: BatchHandler,
    batches: list[list[ConsumerRecord]],  # type: ignore[type-arg]
    keyring: KeyRing | None = None,
    max_attempts: int = 3,
) -> KitMetrics:
    """Hand `batches` to an EventConsumer of `topic` (its contracts by the topic's name, group "g")."""
    metrics = KitMetrics()
    producer = idempotent_producer(stack.bootstrap, "test")
    await producer.start()
    contracts = TOPIC_CONTRACTS[topic.rsplit(".", 1)[-1]]
    consumer = EventConsumer(
        topic=topic,
        group="g",
        contracts=contracts,
        handler=handler,
        pool=pool,
        producer=producer,
        metrics=metrics,
        keyring=keyring,
        max_attempts=max_attempts,
    )
    try:
        for batch in batches:
            await consumer.handle_batch(batch)
    finally:
        await producer.stop()
    return metrics


async def _pool_with_applied_table(stack: Stack, db: str) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(stack.service_dsn("membership", db), min_size=1, max_size=2)
    assert pool is not None
    async with pool.acquire() as conn:
        await apply_migrations(conn, {"kit": KIT_MIGRATIONS})
        await conn.execute("CREATE TABLE applied (event_id text PRIMARY KEY)")
    return pool


async def test_a_failing_event_is_tried_a_bounded_number_of_times_then_dead_lettered(
    stack: Stack, topic_prefix: str, membership_db: str
) -> None:
    pool = await _pool_with_applied_table(stack, membership_db)
    tries: dict[str, int] = {}

    async def handler(conn: Conn, events: list[Incoming]) -> None:
        for e in events:
            tries[e.event.subject] = tries.get(e.event.subject, 0) + 1
            # 666 never works; 777 fails in the batch and at its first attempt alone, then works.
            if e.event.subject == "666" or (e.event.subject == "777" and tries["777"] <= 2):
                raise ValueError("not transient")
            await conn.execute("INSERT INTO applied VALUES ($1)", e.event.id)

    topic = topic_prefix + "graduated"
    subjects = ["701", "777", "666", "702"]
    batch = [_record(topic, i, graduation(f"e{i}", s)) for i, s in enumerate(subjects)]
    metrics = await _handled(stack, pool, topic, handler, [batch], max_attempts=3)

    assert {r[0] for r in await pool.fetch("SELECT event_id FROM applied")} == {"e0", "e1", "e3"}
    assert tries == {"701": 2, "777": 3, "666": 3, "702": 1}  # the batch stopped at 777; then each alone
    dead = await read_topic(stack.bootstrap, topic + ".dlq", 1)
    assert [json.loads(d.value)["id"] for d in dead] == ["e2"]
    assert dict(dead[0].headers)[H_ERROR_KIND] == b"processing-error"
    assert metrics.registry.get_sample_value("alumni_consumer_failed_attempts_total", {"topic": topic}) == 1 + 3
    # Every record before offset 4 was applied or dead-lettered: the position says so.
    position = await pool.fetchval(
        "SELECT next_offset FROM consumer_positions WHERE consumer = 'g' AND topic = $1 AND partition = 0", topic
    )
    assert position == 4
    await pool.close()


class _BrokenKeyRing:
    """Fails (not transiently) for one subject's key, as a key table with a bug would."""

    def __init__(self, good: SubjectKey, broken_subject: str) -> None:
        self.good, self.broken = good, broken_subject
        self.calls = 0

    async def lookup(self, wanted: set[KeyId]) -> dict[KeyId, bytes]:
        self.calls += 1
        if any(subject == self.broken for subject, _ in wanted):
            raise LookupError("the key table is broken for this subject")
        return {self.good.id: self.good.secret} if self.good.id in wanted else {}

    async def current(self, subject_ids: set[str]) -> dict[str, SubjectKey]:
        return {}


async def test_a_message_whose_keys_cannot_be_looked_up_is_dead_lettered_and_the_rest_applied(
    stack: Stack, topic_prefix: str, membership_db: str
) -> None:
    pool = await _pool_with_applied_table(stack, membership_db)

    async def handler(conn: Conn, events: list[Incoming]) -> None:
        for e in events:
            await conn.execute("INSERT INTO applied VALUES ($1)", e.event.id)

    good, broken = new_key(new_id()), new_key(new_id())
    values = [_sealed(good, "m0"), _sealed(broken, "m1"), _sealed(good, "m2")]
    ring = _BrokenKeyRing(good, broken.subject_id)
    topic = topic_prefix + "member-registered"
    records = [ConsumerRecord(topic, 0, i, 0, 0, b"k", v, None, 1, len(v), ()) for i, v in enumerate(values)]
    await _handled(stack, pool, topic, handler, [records], keyring=ring, max_attempts=2)

    assert {r[0] for r in await pool.fetch("SELECT event_id FROM applied")} == {"m0", "m2"}
    dead = await read_topic(stack.bootstrap, topic + ".dlq", 1)
    assert [json.loads(d.value)["id"] for d in dead] == ["m1"]
    assert dict(dead[0].headers)[H_ERROR_KIND] == b"processing-error"
    assert b"LookupError" in dict(dead[0].headers)[H_REASON]
    assert ring.calls == 1 + 1 + 2 + 1  # the batch, then each record alone (m1 twice: its attempts)
    await pool.close()


def _sealed(key: SubjectKey, event_id: str) -> bytes:
    data = MemberSnapshot(
        member_id=key.subject_id,
        student_number="123456",
        given_name="Kari",
        family_name="Nordmann",
        faculties=["HH"],
        programmes=[],
    )
    event = MemberRegisteredV1.create(subject=key.subject_id, data=data, source="/test", id=event_id)
    return seal_event(event, key)
