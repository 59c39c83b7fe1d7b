"""Helpers for the sign-up, application and login tests: the mails membership asks
for (read from the topic, opened with membership's keys), and a tampered link."""

from __future__ import annotations

from typing import Any

from tests.stack import ServiceProcess, Stack, eventually, opened_values, read_topic


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


def tampered(token: str) -> str:
    """The token with one character of its payload changed: the signature no longer fits."""
    body, _, mac = token.partition(".")
    flipped = "A" if body[5] != "A" else "B"
    return f"{body[:5]}{flipped}{body[6:]}.{mac}"
