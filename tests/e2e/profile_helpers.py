"""Helpers for the profile, network and search tests: members from real `graduated`
events, a member's session cookie, and what the topics hold."""

from __future__ import annotations

import json
import re
from typing import Any

import asyncpg
import httpx

from tests.e2e.consent_helpers import SIGNER
from tests.e2e.consent_helpers import outbox_drained as outbox_drained  # re-exported: test_erasure takes it from here
from tests.e2e.graduations import graduation
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, publish, read_topic


def session_cookie(member_id: str) -> dict[str, str]:
    """The cookie a magic-link login sets (the browser test goes through the real login)."""
    token = SIGNER.sign("member-session", {"sub": member_id, "sid": "test"}, 600)
    return {"alumni_session": token}


def member_client(service: ServiceProcess, member_id: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=service.url, cookies=session_cookie(member_id), follow_redirects=False)


async def graduate(stack: Stack, prefix: str, conn: asyncpg.Connection, *events: dict[str, Any]) -> dict[str, str]:
    """Publish graduations and wait for the members; {student number: member id}."""
    await publish(stack.bootstrap, prefix + "graduated", [event_bytes(e) for e in events])
    numbers = sorted({e["data"]["student_number"] for e in events})

    async def all_there() -> dict[str, str] | None:
        rows = await conn.fetch(
            "SELECT student_number, member_id::text FROM members WHERE student_number = ANY($1::text[])", numbers
        )
        return {r[0]: r[1] for r in rows} if len(rows) == len(numbers) else None

    found: dict[str, str] = await eventually(all_there, what="members from the graduations")
    return found


def alumna(sn: str, code: str = "BSL", faculty: str = "TNM", day: str = "2022-06-15", **extra: Any) -> dict[str, Any]:
    return graduation(f"g-{sn}-{code}", sn, code, "bachelor", day, faculty, **extra)


async def csrf_of(client: httpx.AsyncClient, path: str = "/profile") -> str:
    page = await client.get(path, headers={"Accept": "text/html"})
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def events_on(stack: Stack, topic: str, key: str | None = None, settle: float = 1.0) -> list[dict[str, Any]]:
    """Every event on `topic` (for member `key`) from the beginning; callers drain the outbox first."""
    records = await read_topic(stack.bootstrap, topic, 1_000_000, timeout=settle)
    events = [json.loads(r.value) for r in records if key is None or r.key == key.encode()]
    return sorted(events, key=lambda e: (e.get("sequence") or 0, e["time"]))
