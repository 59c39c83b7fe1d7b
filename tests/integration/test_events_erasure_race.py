"""A registration racing her erasure (real PostgreSQL): whichever commits first, no
registration of an erased member keeps her id."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest

from alumni_kit.db import KIT_MIGRATIONS, apply_migrations
from events import lifecycle, registrations
from events.app import MIGRATIONS
from events.registrations import RefusedError
from tests.e2e.events_helpers import new_members
from tests.events import event_definition
from tests.stack import Stack
from usn_schemas.events import EventDefinition

pytestmark = pytest.mark.real


async def test_a_registration_racing_her_erasure_never_keeps_her_id(stack: Stack, events_db: str) -> None:
    pool = await asyncpg.create_pool(stack.service_dsn("events", events_db), min_size=2, max_size=40)
    assert pool is not None
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, {"kit": KIT_MIGRATIONS, "events": MIGRATIONS})
            async with conn.transaction():
                definition = EventDefinition.model_validate(event_definition(capacity=10))
                event_id = await lifecycle.create(conn, definition, "tester")
                await lifecycle.publish_event(conn, event_id, datetime.now(UTC))
        members = new_members(60)
        # Some hold a place already, so that erasure also gives seats and offers on.
        async with pool.acquire() as conn, conn.transaction():
            for m in members[:20]:
                await registrations.register(conn, event_id, m, datetime.now(UTC))

        async def register(m: str) -> str:
            async with pool.acquire() as conn:
                try:
                    async with conn.transaction():
                        return (await registrations.register(conn, event_id, m, datetime.now(UTC))).status
                except RefusedError as exc:
                    return str(exc.status)

        async def erase(m: str) -> None:
            async with pool.acquire() as conn, conn.transaction():
                await registrations.erase_members(conn, [(m, datetime.now(UTC))], datetime.now(UTC))

        racing = members[20:]
        outcomes = await asyncio.gather(*(register(m) for m in racing), *(erase(m) for m in members[:10] + racing))
        assert set(outcomes[: len(racing)]) <= {"registered", "waitlisted", "409", "410"}
        async with pool.acquire() as conn:
            linked = await conn.fetchval(
                "SELECT count(*) FROM registrations WHERE member_id = any($1::uuid[])", members[:10] + racing
            )
            assert linked == 0
            # Seats never exceed the capacity, whatever erasure gave on.
            taken = await conn.fetchval(
                "SELECT count(*) FROM registrations WHERE event_id = $1 AND status IN ('registered', 'offered')",
                event_id,
            )
            assert taken <= 10
            kept = await conn.fetchval(
                "SELECT count(*) FROM registrations WHERE member_id = any($1::uuid[])", members[10:20]
            )
            assert kept == 10  # members not erased keep theirs
    finally:
        await pool.close()
