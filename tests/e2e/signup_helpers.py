"""Helpers for the sign-up, application and login tests: the mails membership asks
for (read from the topic, opened with membership's keys), and what pages say."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import parse_qs, urlparse

import asyncpg
import httpx

from alumni_kit.auth import TokenSigner, issue_staff_token, parse_keys
from tests.stack import SIGNING_KEYS, ServiceProcess, Stack, eventually, opened_values, read_topic

SIGNER = TokenSigner(parse_keys(SIGNING_KEYS))


def staff(role: str, faculty: str | None = None, subject: str = "tester") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_staff_token(SIGNER, subject, role, faculty, 600)}"}  # type: ignore[arg-type]


async def started(service: ServiceProcess) -> ServiceProcess:
    service.start()
    await service.wait_ready()
    return service


async def opened_events(
    stack: Stack, prefix: str, topic: str, membership: ServiceProcess, key: str | None = None, settle: float = 1.0
) -> list[dict[str, Any]]:
    """Every event on `topic` (for entity `key`), personal fields opened with membership's keys."""
    records = await read_topic(stack.bootstrap, prefix + topic, 1_000_000, timeout=settle)
    mine = [r for r in records if key is None or r.key == key.encode()]
    opened = await opened_values(mine, membership)
    return sorted((e for e in opened if e is not None), key=lambda e: e["time"])


async def mails_for(
    stack: Stack, prefix: str, subject_id: str, membership: ServiceProcess, expected: int = 1
) -> list[dict[str, Any]]:
    """The opened transactional-mail-requested data for `subject_id` (at least `expected`), oldest first."""

    async def enough() -> list[dict[str, Any]] | None:
        found = await opened_events(stack, prefix, "transactional-mail-requested", membership, subject_id)
        return [m["data"] for m in found] if len(found) >= expected else None

    mails: list[dict[str, Any]] = await eventually(enough, what=f"{expected} mail request(s)")
    return mails


async def outbox_drained(conn: asyncpg.Connection) -> None:
    async def empty() -> bool:
        return await conn.fetchval("SELECT count(*) FROM outbox") == 0

    await eventually(empty, what="the outbox to be published")


def token_of(url: str) -> str:
    return parse_qs(urlparse(url).query)["token"][0]


def page_text(response: httpx.Response) -> str:
    """The visible text of a page, roughly: tags dropped, entities decoded, spaces squeezed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.text))).strip()


def tampered(token: str) -> str:
    """The token with one character of its payload changed: the signature no longer fits."""
    body, _, mac = token.partition(".")
    flipped = "A" if body[5] != "A" else "B"
    return f"{body[:5]}{flipped}{body[6:]}.{mac}"
