"""The outbox relay on the real broker and database: a row the broker refuses for good
(larger than its topic's max.message.bytes) is quarantined after the bounded attempts
and the rows behind it are published; a broker outage (kill -9, restart) quarantines nothing;
a relay waiting for a killed broker says so and stops when asked."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from alumni_kit.db import KIT_MIGRATIONS, apply_migrations
from alumni_kit.kafka import MAX_REQUEST_BYTES, idempotent_producer
from alumni_kit.metrics import KitMetrics
from alumni_kit.outbox import OutboxRelay
from tests.stack import Stack, eventually, read_topic

pytestmark = pytest.mark.real

TOPIC = "outbox-probe"  # logical name; the relay adds the test's prefix
LIMIT = 16 * 1024  # the probe topic's max.message.bytes
MARKER = "PAYLOAD-MARKER-NEVER-LOGGED"


@dataclass
class Relay:
    relay: OutboxRelay
    metrics: KitMetrics
    pool: asyncpg.Pool
    dsn: str
    topic: str
    task: asyncio.Task[None]


async def _set_limit(bootstrap: str, topic: str, limit: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": str(limit)})]
        )
    finally:
        await admin.close()


@pytest.fixture
async def probe_topic(stack: Stack, topic_prefix: str) -> AsyncIterator[str]:
    """A 3-partition topic that accepts records (and record batches) up to 16 KiB."""
    name = topic_prefix + TOPIC
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(name, 3, 1, topic_configs={"max.message.bytes": str(LIMIT)})])
    yield name
    await admin.delete_topics([name])
    await admin.close()


@pytest.fixture
async def relay(
    stack: Stack, topic_prefix: str, membership_db: str, probe_topic: str, request: pytest.FixtureRequest
) -> AsyncIterator[Relay]:
    dsn = stack.service_dsn("membership", membership_db)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    assert pool is not None
    async with pool.acquire() as conn:
        await apply_migrations(conn, {"kit": KIT_MIGRATIONS})
    producer = idempotent_producer(stack.bootstrap, "outbox-test")
    await producer.start()
    metrics = KitMetrics()
    relay = OutboxRelay(
        pool,
        producer,
        metrics,
        batch_size=500,
        poll_seconds=0.2,
        topic_prefix=topic_prefix,
        max_attempts=getattr(request, "param", 3),
        quarantine_gauge_seconds=0.2,
    )
    task = asyncio.create_task(relay.run())
    yield Relay(relay, metrics, pool, dsn, probe_topic, task)
    relay.stop()
    await task
    await producer.stop()
    await pool.close()


def _event(event_id: str, pad: int) -> bytes:
    return json.dumps({"id": event_id, "type": "no.usn.test.probe.v1", "pad": MARKER + "x" * pad}).encode()


async def _write(pool: asyncpg.Pool, rows: list[tuple[str, str, int]]) -> None:
    """Outbox rows (key, event id, padding) in one transaction, as a handler writes them."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            "INSERT INTO outbox (topic, key, value) VALUES ($1, $2, $3)",
            [(TOPIC, key.encode(), _event(event_id, pad)) for key, event_id, pad in rows],
        )
        await conn.execute("NOTIFY outbox")


async def _tool(*args: str) -> str:
    """`python -m usn_tools.outbox`, as an operator runs it."""
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "usn_tools.outbox", *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def _ids(records: list[object]) -> list[str]:
    return [json.loads(r.value)["id"] for r in records]  # type: ignore[attr-defined]


async def _published(stack: Stack, topic: str, wanted: set[str], timeout: float = 60) -> list[str]:
    """The event ids on `topic` in offset order per partition, once all of `wanted` are there.

    Publishing is at least once: a row re-sent after its batch was refused may be
    there twice, so a count of records alone would not do.
    """

    async def all_there() -> list[str]:
        ids = _ids(await read_topic(stack.bootstrap, topic, len(wanted), timeout=5))
        return ids if wanted <= set(ids) else []

    result: list[str] = await eventually(all_there, timeout, f"{len(wanted)} events on {topic}")
    return result


async def test_a_row_too_large_for_its_topic_is_quarantined_and_the_rows_behind_it_are_published(
    stack: Stack, relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="alumni_kit")
    # The producer has written to every partition before (the usual case in a service):
    # a refused batch then puts its sequence out of step with the broker's.
    await _write(relay.pool, [(f"warm-{i}", f"warm-{i}", 10) for i in range(9)])
    assert len(await read_topic(stack.bootstrap, relay.topic, 9)) == 9

    # The big row, then 60 ordinary ones of ~1 KB: about 20 of them share a partition,
    # so their record batches exceed the topic's 16 KiB too, although each row fits.
    behind = [("k-big" if i % 10 == 0 else f"k-{i}", f"e-{i}", 1000) for i in range(60)]
    # And one above what the producer sends at all (4 MiB): the relay refuses it itself.
    huge = ("k-huge", "the-huge-one", MAX_REQUEST_BYTES)
    await _write(relay.pool, [("k-big", "the-big-one", 3 * LIMIT), *behind[:30], huge, *behind[30:]])

    published = await _published(stack, relay.topic, {e for _, e, _ in behind})
    assert set(published) == {f"warm-{i}" for i in range(9)} | {e for _, e, _ in behind}
    # The rows behind it with the big one's key keep their order among themselves.
    same_key = [e for e in dict.fromkeys(published) if e in {e for k, e, _ in behind if k == "k-big"}]
    assert same_key == [f"e-{i}" for i in range(0, 60, 10)]

    async def outbox_empty() -> bool:
        return await relay.pool.fetchval("SELECT count(*) FROM outbox") == 0

    await eventually(outbox_empty, 30, "the outbox to drain")
    quarantined = await relay.pool.fetch("SELECT * FROM outbox_quarantine ORDER BY id")
    assert [(q["topic"], bytes(q["key"]), q["attempts"], q["error_class"]) for q in quarantined] == [
        (TOPIC, b"k-big", 3, "MessageSizeTooLargeError"),
        (TOPIC, b"k-huge", 3, "RowTooLargeToSendError"),
    ]
    assert "error code 10" in quarantined[0]["error_reason"]
    assert "request limit" in quarantined[1]["error_reason"]
    assert [json.loads(q["value"])["id"] for q in quarantined] == ["the-big-one", "the-huge-one"]  # kept whole
    big_id, huge_id = (q["id"] for q in quarantined)
    sample = relay.metrics.registry.get_sample_value

    async def metrics_show_it() -> bool:
        counted = sample("alumni_outbox_rows_quarantined_total", {"topic": TOPIC})
        return (counted, sample("alumni_outbox_quarantined_rows", {"topic": TOPIC})) == (2, 2)

    await eventually(metrics_show_it, 10, "the quarantine's counter and gauge")
    assert sample("alumni_messages_produced_total", {"topic": TOPIC}) >= 69
    assert f"outbox row {big_id} to {TOPIC} quarantined after 3 refusals" in caplog.text
    assert MARKER not in caplog.text

    # The operator's view: ids, topic, entity, event, error, times; never the value.
    shown = await _tool("list", "--database-url", relay.dsn) + await _tool(
        "show", str(big_id), "--database-url", relay.dsn
    )
    assert f"{big_id:>10}" in shown
    assert "k-big" in shown
    assert "MessageSizeTooLargeError ×3" in shown
    assert "no.usn.test.probe.v1 the-big-one" in shown
    assert "2 rows in quarantine" in shown
    assert MARKER not in shown

    # Fixed (the topic accepts larger records now) and put back: it is published.
    await _set_limit(stack.bootstrap, relay.topic, 1024 * 1024)
    assert f"put back into the outbox: {big_id}" in await _tool("retry", str(big_id), "--database-url", relay.dsn)
    assert "the-big-one" in await _published(stack, relay.topic, {"the-big-one"})

    async def only_the_huge_one_left() -> bool:
        left = [r[0] for r in await relay.pool.fetch("SELECT id FROM outbox_quarantine")]
        return left == [huge_id] and sample("alumni_outbox_quarantined_rows", {"topic": TOPIC}) == 1

    await eventually(only_the_huge_one_left, 30, "the quarantine to lose the fixed row and its gauge to follow")
    assert await relay.pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_relay_waiting_for_a_killed_broker_says_so_and_stops_when_asked(
    stack: Stack, relay: Relay, kafka_control: None
) -> None:
    await _write(relay.pool, [(f"warm-{i}", f"warm-{i}", 10) for i in range(3)])
    assert len(await read_topic(stack.bootstrap, relay.topic, 3)) == 3
    # A consumer sees the records before the relay has their acknowledgement and deleted
    # the rows: a kill in between would leave them in the outbox too.
    await eventually(lambda: _outbox_empty(relay.pool), 30, "the warm-up rows to leave the outbox")
    sample = relay.metrics.registry.get_sample_value
    retries_before = sample("alumni_transient_retries_total", {"operation": "outbox_relay"}) or 0.0

    await asyncio.to_thread(stack.kill_kafka)
    await _write(relay.pool, [(f"k-{i}", f"during-{i}", 100) for i in range(20)])

    async def waiting_shows() -> tuple[float | None, float | None] | None:
        # The producer resends by itself; the relay waits, and the metrics the outbox alerts watch say so.
        seen = (
            sample("alumni_outbox_backlog_messages"),
            sample("alumni_transient_retries_total", {"operation": "outbox_relay"}),
        )
        return seen if seen[0] == 20 and (seen[1] or 0) >= retries_before + 2 else None

    await eventually(waiting_shows, 30, "the wait for the broker on the backlog gauge and the retry counter")
    relay.relay.stop()
    await asyncio.wait_for(relay.task, timeout=10)  # not held until the broker is back
    assert await relay.pool.fetchval("SELECT count(*) FROM outbox") == 20, "the abandoned round's rows stay"


@pytest.fixture
def kafka_control(stack: Stack) -> Iterator[None]:
    """Lets a test kill the suite's broker; it is running again afterwards whatever happened."""
    yield
    stack.start_kafka()


async def _outbox_empty(pool: asyncpg.Pool) -> bool:
    return bool(await pool.fetchval("SELECT count(*) FROM outbox") == 0)


async def _relay_lock_held(pool: asyncpg.Pool) -> bool:
    held = await pool.fetchval(
        """SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
            WHERE l.locktype = 'advisory' AND l.objid = 7340002 AND l.granted AND d.datname = current_database()"""
    )
    return bool(held)


@pytest.mark.parametrize("relay", [1], indirect=True)  # one refusal would quarantine at once
async def test_a_broker_killed_and_restarted_quarantines_nothing(
    stack: Stack, relay: Relay, kafka_control: None
) -> None:
    await _write(relay.pool, [(f"warm-{i}", f"warm-{i}", 10) for i in range(3)])
    assert len(await read_topic(stack.bootstrap, relay.topic, 3)) == 3
    # A consumer sees the records before the relay has their acknowledgement and deleted
    # the rows: a kill in between would leave them in the outbox too.
    await eventually(lambda: _outbox_empty(relay.pool), 30, "the warm-up rows to leave the outbox")

    await asyncio.to_thread(stack.kill_kafka)
    rows = [(f"k-{i}", f"during-{uuid.uuid4().hex[:6]}-{i}", 100) for i in range(20)]
    await _write(relay.pool, rows)
    # The relay is in a round (it holds its lock) publishing into the outage.
    await eventually(lambda: _relay_lock_held(relay.pool), 30, "the relay to try publishing")
    assert await relay.pool.fetchval("SELECT count(*) FROM outbox") == 20
    await asyncio.to_thread(stack.start_kafka)

    await _published(stack, relay.topic, {e for _, e, _ in rows}, timeout=90)

    async def outbox_empty() -> bool:
        return await relay.pool.fetchval("SELECT count(*) FROM outbox") == 0

    await eventually(outbox_empty, 60, "the outbox to drain after the outage")
    assert await relay.pool.fetchval("SELECT count(*) FROM outbox_quarantine") == 0
    assert relay.metrics.registry.get_sample_value("alumni_outbox_rows_quarantined_total", {"topic": TOPIC}) is None
