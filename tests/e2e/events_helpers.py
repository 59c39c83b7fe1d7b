"""Helpers for the events tests: staff calls, members' signed links, registration calls
and what the service published (read back from the broker)."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from typing import Any

import asyncpg
import httpx

from alumni_kit.auth import issue_member_link
from tests.e2e.consent_helpers import SIGNER, outbox_drained, staff_headers
from tests.events import event_definition
from tests.stack import ServiceProcess, Stack, read_topic

# Made once, when the module is imported: it must outlast a whole test session (the default
# 10 minutes expired before the events tests ran, after the slower mailer tests).
COMMS = staff_headers("comms", ttl=6 * 3600)


def member_link(member_id: str, ttl: int = 3600, purpose: str = "events") -> str:
    """What `alumni-token member-link --member ID --purpose events` issues."""
    return issue_member_link(SIGNER, member_id, purpose, ttl, secrets.token_urlsafe(12))


def new_members(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def create_event(events: ServiceProcess, who: dict[str, str] = COMMS, **fields: Any) -> str:
    answer = httpx.post(f"{events.url}/events", json=event_definition(**fields), headers=who)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["event_id"])


def published_event(events: ServiceProcess, **fields: Any) -> str:
    event_id = create_event(events, **fields)
    answer = httpx.post(f"{events.url}/events/{event_id}/publish", headers=COMMS)
    assert answer.status_code == 200, answer.text
    return event_id


def counts(events: ServiceProcess, event_id: str) -> dict[str, int]:
    answer = httpx.get(f"{events.url}/events/{event_id}", headers=COMMS)
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["counts"])


def act(events: ServiceProcess, event_id: str, member_id: str, what: str = "registrations") -> httpx.Response:
    """`what`: registrations (register), registrations/cancel, offer/accept, offer/decline."""
    token = member_link(member_id)
    return httpx.post(f"{events.url}/events/{event_id}/{what}", json={"member_token": token})


async def register_at_once(events: ServiceProcess, event_id: str, member_ids: list[str]) -> list[httpx.Response]:
    """Every registration sent at the same time, each on its own connection."""
    limits = httpx.Limits(max_connections=len(member_ids), max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        start = asyncio.Event()

        async def one(member_id: str) -> httpx.Response:
            token = member_link(member_id)
            await start.wait()
            return await client.post(f"{events.url}/events/{event_id}/registrations", json={"member_token": token})

        tasks = [asyncio.create_task(one(m)) for m in member_ids]
        await asyncio.sleep(0)
        start.set()
        return await asyncio.gather(*tasks)


async def registrations(conn: asyncpg.Connection, event_id: str) -> list[asyncpg.Record]:
    """Every registration of the event in order of arrival."""
    return await conn.fetch(
        "SELECT member_id::text, status, arrival, end_reason, offer_expires_at FROM registrations"
        " WHERE event_id = $1 ORDER BY arrival",
        event_id,
    )


async def facts(stack: Stack, prefix: str, conn: asyncpg.Connection, topic: str, event_id: str) -> list[dict[str, Any]]:
    """The event's facts on `topic` as the broker has them, in partition order (once the outbox is empty)."""
    await outbox_drained(conn)
    records = await read_topic(stack.bootstrap, prefix + topic, 1_000_000, timeout=2)
    mine = [r for r in records if r.key == event_id.encode()]
    assert len({r.partition for r in mine}) <= 1, "one event's facts stay in one partition"
    return [json.loads(r.value) for r in sorted(mine, key=lambda r: r.offset)]
