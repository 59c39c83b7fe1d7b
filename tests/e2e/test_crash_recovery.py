"""No lost facts, no double effects: the service or the database dies mid-stream."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from tests.e2e.expect import expected_members, expected_programmes, member_count, stored_programmes
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, publish, records_now
from usn_tools.alumni.dlq import read_dead_letters
from usn_tools.fs_demo import graduation_events

pytestmark = pytest.mark.real
STREAM = 20_000


async def _at_least(conn: asyncpg.Connection, n: int) -> bool:
    return await member_count(conn) >= n


async def _all_there(conn: asyncpg.Connection, want: set[tuple[str, str, str]]) -> bool:
    return await stored_programmes(conn) == want


async def _outbox_empty(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT count(*) FROM outbox") == 0)


async def _assert_exactly_once(stack: Stack, prefix: str, conn: asyncpg.Connection, events: list[dict]) -> None:  # type: ignore[type-arg]
    want = expected_programmes(events)
    await eventually(lambda: _all_there(conn, want), timeout=180, what="every programme after recovery")
    members = expected_members(events)
    assert await member_count(conn) == len(members)
    # The relay publishes at least once: a crash between publish and delete repeats rows,
    # so the topic is read whole once the outbox is empty, not up to a count.
    await eventually(lambda: _outbox_empty(conn), timeout=120, what="the outbox published")
    registered = await records_now(stack.bootstrap, prefix + "member-registered")
    # Facts carry personal data sealed; the envelope's subject (member id) is plain.
    subjects = {json.loads(r.value)["subject"] for r in registered}
    stored = {str(r[0]) for r in await conn.fetch("SELECT member_id FROM members")}
    assert subjects == stored, "every member's member-registered fact reached the topic"


async def _stream_under_way(
    stack: Stack, prefix: str, service: ServiceProcess, conn: asyncpg.Connection, seed: int
) -> tuple[list[dict], asyncio.Task[None]]:  # type: ignore[type-arg]
    """Start the service, publish STREAM events in the background, return once a tenth is applied."""
    events = list(graduation_events(STREAM, seed=seed))
    service.start()
    await service.wait_ready()
    publishing = asyncio.create_task(publish(stack.bootstrap, prefix + "graduated", [event_bytes(e) for e in events]))
    await eventually(lambda: _at_least(conn, 2000), what="the stream under way")
    assert await member_count(conn) < len(expected_members(events)), "the disruption must land mid-stream"
    return events, publishing


async def test_kill_9_mid_stream_then_restart_loses_nothing_and_duplicates_nothing(
    stack: Stack, topic_prefix: str, membership_service: ServiceProcess, membership_conn: asyncpg.Connection
) -> None:
    events, publishing = await _stream_under_way(stack, topic_prefix, membership_service, membership_conn, seed=20)
    membership_service.kill()

    membership_service.start()
    await membership_service.wait_ready()
    await publishing
    await _assert_exactly_once(stack, topic_prefix, membership_conn, events)


async def test_postgres_restarted_mid_stream_loses_nothing_and_duplicates_nothing(
    stack: Stack,
    topic_prefix: str,
    membership_service: ServiceProcess,
    membership_conn: asyncpg.Connection,
    membership_db: str,
) -> None:
    events, publishing = await _stream_under_way(stack, topic_prefix, membership_service, membership_conn, seed=21)
    await asyncio.to_thread(stack.restart_postgres, 3.0)
    assert membership_service.proc is not None
    assert membership_service.proc.poll() is None, "the service rides out the outage"

    conn = await asyncpg.connect(stack.service_dsn("membership", membership_db))
    try:
        await publishing
        await _assert_exactly_once(stack, topic_prefix, conn, events)
    finally:
        await conn.close()
    dead = await read_dead_letters(stack.bootstrap, topic_prefix + "graduated.dlq")
    assert dead == [], "an outage is retried, never dead-lettered"
