"""Helpers for the mailer tests: what the other services and a communications tool
would publish (members, consent facts, campaigns), with a plain Kafka client."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from tests.e2e.consent_helpers import member_registered
from tests.events import campaign as campaign
from tests.events import consent_fact as consent_fact
from tests.stack import Stack, event_bytes, eventually, publish

NB_NAMES = [("Åse", "Ødegård"), ("Kari", "Nordmann"), ("Bjørn", "Sæther"), ("Ola", "Hansen")]


def members(count: int, faculty: str = "TNM", prefix: str = "m") -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        given, family = NB_NAMES[i % len(NB_NAMES)]
        event = member_registered(
            str(uuid.uuid4()), email=f"{prefix}{i}@example.no", faculty=faculty, given_name=f"{given}{i}"
        )
        event["data"]["family_name"] = family
        out.append(event)
    return out


async def load(
    stack: Stack,
    prefix: str,
    conn: asyncpg.Connection,
    people: list[dict[str, Any]],
    consenting: list[dict[str, Any]],
    purpose: str = "newsletter",
    others: int = 0,
) -> dict[str, str]:
    """Publish members and consent (given, sequence 1, to `purpose`) for `consenting`; wait until
    the mailer has it all (and `others` consents published apart). Returns {member_id: fact_id}."""
    await publish(stack.bootstrap, prefix + "member-registered", [event_bytes(p) for p in people])
    facts = [consent_fact(p["data"]["member_id"], 1, "given", purpose) for p in consenting]
    await publish(stack.bootstrap, prefix + "consent-given", [event_bytes(f) for f in facts])

    async def ready() -> bool:
        known = await conn.fetchval("SELECT count(*) FROM members")
        consents = await conn.fetchval("SELECT count(*) FROM consent_view")
        return bool(known == len(people) and consents == len(facts) + others)

    await eventually(ready, timeout=120, what="the mailer's copies of members and consent")
    return {f["data"]["member_id"]: f["data"]["fact_id"] for f in facts}


async def campaign_state(conn: asyncpg.Connection, campaign_id: str) -> str | None:
    state: str | None = await conn.fetchval("SELECT status FROM campaigns WHERE campaign_id = $1", campaign_id)
    return state


async def until_done(conn: asyncpg.Connection, campaign_id: str, timeout: float = 120) -> None:
    async def done() -> bool:
        return await campaign_state(conn, campaign_id) == "done"

    await eventually(done, timeout=timeout, what=f"campaign {campaign_id} done")


def values(records: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in records]
