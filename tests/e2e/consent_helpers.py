"""Helpers for the consent tests: member events as membership would publish
them, the mails consent requests, and reading what the pages say; and those every
end-to-end test shares: a staff token, a started service, an empty outbox, a
page's visible text and a link's token."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import parse_qs, urlparse

import asyncpg
import httpx

from alumni_kit.auth import TokenSigner, issue_staff_token, parse_keys
from tests.conftest import SIGNING_KEYS
from tests.events import member_erased as member_erased
from tests.events import member_registered as member_registered
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, opened_values, publish, read_topic

SIGNER = TokenSigner(parse_keys(SIGNING_KEYS))


def staff_headers(role: str, faculty: str | None = None, ttl: int = 600, subject: str = "tester") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_staff_token(SIGNER, subject, role, faculty, ttl)}"}  # type: ignore[arg-type]


async def register(stack: Stack, prefix: str, conn: asyncpg.Connection, *events: dict[str, Any]) -> None:
    """Publish member-registered events and wait until consent holds every one."""
    await publish(stack.bootstrap, prefix + "member-registered", [event_bytes(e) for e in events])
    ids = [e["data"]["member_id"] for e in events]

    async def known() -> bool:
        return await conn.fetchval("SELECT count(*) FROM subjects WHERE member_id = any($1::text[])", ids) == len(ids)

    await eventually(known, what="consent to know the members")


async def mails_for(
    stack: Stack, prefix: str, member_id: str, expected: int, consent: ServiceProcess
) -> list[dict[str, Any]]:
    """The transactional-mail-requested events for one member (at least `expected`), oldest first,
    opened with her key from the membership service consent uses (they travel sealed)."""

    async def enough() -> list[dict[str, Any]] | None:
        records = await read_topic(stack.bootstrap, prefix + "transactional-mail-requested", 1_000_000, timeout=1)
        mine = [r for r in records if r.key == member_id.encode()]
        assert all(member_id.encode() not in r.value or b'"pd1.' in r.value for r in mine)
        mails = [m for m in await opened_values(mine, consent.requires[0]) if m is not None]
        return mails if len(mails) >= expected else None

    mails: list[dict[str, Any]] = await eventually(enough, what=f"{expected} mail request(s)")
    return sorted(mails, key=lambda m: m["time"])


def token_of(url: str) -> str:
    """The token in a link: a query parameter, or the last path segment (unsubscribe)."""
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    return query["token"][0] if "token" in query else parsed.path.rsplit("/", 1)[-1]


def page_text(response: httpx.Response) -> str:
    """The visible text of a page, roughly: tags dropped, entities decoded, spaces squeezed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.text))).strip()


def checked_boxes(response: httpx.Response) -> set[str]:
    return set(re.findall(r'name="([a-z]+:[a-z0-9-]+)" id="[^"]+" checked', response.text))


async def ledger(conn: asyncpg.Connection, member_id: str) -> list[tuple[int, str, str, str, str]]:
    rows = await conn.fetch(
        "SELECT sequence, channel, purpose, state, source FROM ledger WHERE member_id = $1 ORDER BY sequence", member_id
    )
    return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]


async def started(service: ServiceProcess) -> ServiceProcess:
    service.start()
    await service.wait_ready()
    return service


async def outbox_drained(conn: asyncpg.Connection) -> None:
    async def empty() -> bool:
        return bool(await conn.fetchval("SELECT count(*) FROM outbox") == 0)

    await eventually(empty, what="the outbox to be published")
