"""What the database should hold after a stream of graduated events, computed
independently of the service's code (plain Python over the published events)."""

from __future__ import annotations

from typing import Any

import asyncpg

ELIGIBLE = {"bachelor", "master", "phd", "evu"}


def expected_programmes(events: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (e["data"]["student_number"], e["data"]["programme_code"], e["data"]["degree_level"])
        for e in events
        if e["data"]["degree_level"] in ELIGIBLE
    }


def expected_members(events: list[dict[str, Any]]) -> set[str]:
    return {sn for sn, _, _ in expected_programmes(events)}


async def stored_programmes(conn: asyncpg.Connection) -> set[tuple[str, str, str]]:
    rows = await conn.fetch(
        "SELECT m.student_number, p.programme_code, p.degree_level FROM members m JOIN programmes p USING (member_id)"
    )
    return {(r[0], r[1], r[2]) for r in rows}


async def member_count(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM members"))
