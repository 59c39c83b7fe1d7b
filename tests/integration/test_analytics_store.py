"""Analytics' projections in a real PostgreSQL generation equal the pure recomputation.

The same generated streams as tests/unit/test_analytics_projection.py (duplicates,
any interleaving, any batches), applied through `analytics.store` one transaction
per batch with the positions; a redelivered batch (offsets already applied) changes
nothing. Kept small: each example builds a fresh generation.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from aiokafka.structs import ConsumerRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alumni_kit.db import KIT_MIGRATIONS, apply_migrations
from analytics import generations, store
from analytics.generations import MIGRATIONS
from analytics.rules import Projection, Weights
from tests.analytics_streams import PEPPER, batches, build, deliveries, stored, streams
from tests.stack import Stack

pytestmark = [pytest.mark.real, pytest.mark.once]  # PostgreSQL only: the Kafka version does not matter


def _record(topic: str, offset: int) -> ConsumerRecord:
    return ConsumerRecord(topic, 0, offset, 0, 0, None, None, None, 0, 0, [])


async def _check(dsn: str, built: list[Any], delivered: list[int], cuts: list[int]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        name = await generations.create_generation(conn)
        # Offsets: each delivery of an event is a record of its own (a duplicate is a new offset).
        records = [(_record("t", offset), built[i][2]) for offset, i in enumerate(delivered)]
        for batch in batches(records, cuts):
            for _ in range(2):  # the second time is a redelivery: its offsets are applied already
                async with conn.transaction():
                    fresh = await store.unapplied(conn, name, [r for r, _ in batch])
                    events = [e for (_, e), new in zip(batch, fresh, strict=True) if new]
                    await store.apply_batch(conn, name, events, Weights(), PEPPER)
                    await store.record_positions(conn, name, store.reached_by([r for r, _ in batch]))
        once = Projection(pepper=PEPPER)
        for _, _, event in built:
            once.apply([event])
        assert await stored(conn, name) == once.snapshot()
        await generations.drop_generation(conn, name)
    finally:
        await conn.close()


async def _prepare(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn, {"kit": KIT_MIGRATIONS, "analytics": MIGRATIONS})
        await generations.ensure_live(conn)
    finally:
        await conn.close()


def test_generation_rows_equal_recomputation(stack: Stack, analytics_db: str) -> None:
    dsn = stack.service_dsn("analytics", analytics_db)
    asyncio.run(_prepare(dsn))

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(data=st.data(), specs=streams)
    def check(data: st.DataObject, specs: list[Any]) -> None:
        built = build(specs)
        delivered, cuts = data.draw(deliveries(len(built)))
        asyncio.run(_check(dsn, built, delivered, cuts))

    check()
