"""Generations: one PostgreSQL schema of projection tables each (services/analytics/README.md).

The live generation serves; a rebuild fills a fresh one from offset 0 and switches
it live in one transaction once caught up; an as_of build fills one up to the
positions of a past moment and leaves it frozen. The read side asks this module
which schema to read (`live_generation`, `analytics.as_of.as_of_generation`).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from alumni_kit.db import Conn

MIGRATIONS = Path(__file__).parent / "migrations"
DDL = (Path(__file__).parent / "generation.sql").read_text()
_NAME = re.compile(r"^analytics_g[0-9]+$")
# Taken (FOR UPDATE) by a rebuild's switch, (FOR SHARE) by every live batch: a batch
# applies wholly to the old generation or wholly to the new one.
LIVE_LOCK = "SELECT name FROM generations WHERE state = 'live' FOR SHARE"

# topic -> partition -> offset
Offsets = dict[str, dict[int, int]]


def checked(name: str) -> str:
    """`name` if it is a generation's schema name (it is spliced into SQL as an identifier)."""
    if not _NAME.match(name):
        raise ValueError(f"not a generation name: {name!r}")
    return name


async def live_generation(conn: Conn) -> str:
    """The schema the read side reads for "live" (e.g. 'analytics_g1')."""
    name: str | None = await conn.fetchval("SELECT name FROM generations WHERE state = 'live'")
    if name is None:
        raise RuntimeError("no live generation (the service creates one at start)")
    return checked(name)


async def create_generation(
    conn: Conn, state: str = "building", as_of_moment: datetime | None = None, stop_at: Offsets | None = None
) -> str:
    """A new, empty generation's schema with its tables (one transaction)."""
    async with conn.transaction():
        number = await conn.fetchval("SELECT nextval('generation_numbers')")
        name = f"analytics_g{number}"
        await conn.execute(f"CREATE SCHEMA {name}")
        await _apply_ddl(conn, name)
        await conn.execute(
            "INSERT INTO generations (name, state, as_of_moment, stop_at) VALUES ($1, $2, $3, $4::jsonb)",
            name,
            state,
            as_of_moment,
            None if stop_at is None else json.dumps(stop_at),
        )
    return name


async def _apply_ddl(conn: Conn, name: str) -> None:
    await conn.execute(f"SET LOCAL search_path TO {checked(name)}, public")
    await conn.execute(DDL)
    await conn.execute("SET LOCAL search_path TO DEFAULT")


async def ensure_live(conn: Conn) -> str:
    """The live generation, created empty on a fresh database; additive table changes applied."""
    async with conn.transaction():
        await conn.execute("LOCK TABLE generations IN EXCLUSIVE MODE")  # two replicas starting at once
        name: str | None = await conn.fetchval("SELECT name FROM generations WHERE state = 'live'")
        if name is None:
            return await create_generation(conn, state="live")
        await _apply_ddl(conn, name)
        return checked(name)


async def building_generation(conn: Conn) -> str | None:
    """A rebuild left unfinished (killed): resumed rather than started afresh."""
    name: str | None = await conn.fetchval(
        """SELECT name FROM generations WHERE state = 'building' AND as_of_moment IS NULL
           ORDER BY created_at DESC LIMIT 1"""
    )
    return None if name is None else checked(name)


async def switch_live(conn: Conn, name: str) -> str:
    """Make `name` live and retire the old one (call in the transaction holding the live row
    FOR UPDATE, after the last catch-up); returns the retired generation's name."""
    old = await conn.fetchval("UPDATE generations SET state = 'retired' WHERE state = 'live' RETURNING name")
    await conn.execute("UPDATE generations SET state = 'live', switched_at = now() WHERE name = $1", checked(name))
    return str(old)


async def drop_generation(conn: Conn, name: str) -> None:
    """Drop a retired or abandoned generation (its schema and its row)."""
    async with conn.transaction():
        state = await conn.fetchval("SELECT state FROM generations WHERE name = $1", checked(name))
        if state == "live":
            raise RuntimeError("the live generation cannot be dropped")
        await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        await conn.execute("DELETE FROM generations WHERE name = $1", name)


async def positions(conn: Conn, name: str) -> Offsets:
    """The next offset to apply per topic and partition, as `name` has committed it."""
    out: Offsets = {}
    for r in await conn.fetch(f"SELECT topic, partition, next_offset FROM {checked(name)}.positions"):
        out.setdefault(r["topic"], {})[r["partition"]] = r["next_offset"]
    return out
