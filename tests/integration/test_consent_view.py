"""The consent view every consuming service keeps: facts about one member arrive on
two topics, so in any order; the highest sequence wins, repeats change nothing."""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest
from aiokafka.structs import ConsumerRecord

from alumni_kit.consent_view import CONSENT_VIEW_MIGRATIONS, consent_of, consent_view_handler
from alumni_kit.consumer import EventConsumer
from alumni_kit.db import KIT_MIGRATIONS, apply_migrations
from alumni_kit.kafka import idempotent_producer
from alumni_kit.metrics import KitMetrics
from tests.e2e.mailer_helpers import consent_fact
from tests.stack import Stack, event_bytes, publish, read_topic
from usn_schemas.registry import TOPIC_CONTRACTS

pytestmark = pytest.mark.real


async def test_facts_delivered_in_reverse_order_end_in_the_right_state(
    stack: Stack, topic_prefix: str, membership_db: str
) -> None:
    pool = await asyncpg.create_pool(stack.service_dsn("membership", membership_db), min_size=1, max_size=2)
    assert pool is not None
    async with pool.acquire() as conn:
        await apply_migrations(conn, {"kit": KIT_MIGRATIONS, **CONSENT_VIEW_MIGRATIONS})
    member = str(uuid.uuid4())
    # newsletter: given (1) then withdrawn (2); events: withdrawn (3) then given again (4)
    history = [
        consent_fact(member, 1, "given"),
        consent_fact(member, 2, "withdrawn"),
        consent_fact(member, 3, "withdrawn", "events"),
        consent_fact(member, 4, "given", "events"),
    ]
    for f in history:
        await publish(stack.bootstrap, f"{topic_prefix}consent-{f['data']['state']}", [event_bytes(f)])
    records = [
        *await read_topic(stack.bootstrap, topic_prefix + "consent-given", 2),
        *await read_topic(stack.bootstrap, topic_prefix + "consent-withdrawn", 2),
    ]
    by_sequence = sorted(records, key=lambda r: json.loads(r.value)["sequence"])

    producer = idempotent_producer(stack.bootstrap, "test")
    await producer.start()
    consumers = {
        topic: EventConsumer(
            topic=topic,
            group="view",
            contracts=TOPIC_CONTRACTS[topic.removeprefix(topic_prefix)],
            handler=consent_view_handler(),
            pool=pool,
            producer=producer,
            metrics=KitMetrics(),
        )
        for topic in (topic_prefix + "consent-given", topic_prefix + "consent-withdrawn")
    }

    async def deliver(record: ConsumerRecord) -> None:  # type: ignore[type-arg]
        await consumers[record.topic].handle_batch([record])

    try:
        for record in reversed(by_sequence):  # newest first: every older fact must lose
            await deliver(record)
        for record in by_sequence:  # redelivered in order: nothing changes (the inbox drops them)
            await deliver(record)
    finally:
        await producer.stop()

    async with pool.acquire() as conn:
        newsletter = await consent_of(conn, member, "email", "newsletter")
        events = await consent_of(conn, member, "email", "events")
        never = await consent_of(conn, member, "email", "research")
    assert newsletter is not None
    assert (newsletter.state, newsletter.sequence) == ("withdrawn", 2)
    assert events is not None
    assert (events.given, events.sequence, events.fact_id) == (True, 4, history[3]["id"])
    assert never is None
    await pool.close()
