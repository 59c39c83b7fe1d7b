"""Generations: one PostgreSQL schema of projection tables each (services/analytics/README.md).

The live generation serves; a rebuild fills a fresh one from offset 0 and switches
it live in one transaction once caught up; an as_of build fills one up to the
positions of a past moment and leaves it frozen. The read side asks this module
which schema to read (`live_generation`, `analytics.as_of.as_of_generation`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime
from pathlib import Path

from alumni_kit.db import Conn
from analytics.rules import Weights

MIGRATIONS = Path(__file__).parent / "migrations"
DDL = (Path(__file__).parent / "generation.sql").read_text()
_NAME = re.compile(r"^analytics_g[0-9]+$")
# Taken (FOR UPDATE) by a rebuild's switch, (FOR SHARE) by every live batch: a batch
# applies wholly to the old generation or wholly to the new one.
LIVE_LOCK = "SELECT name FROM generations WHERE state = 'live' FOR SHARE"

# topic -> partition -> offset
Offsets = dict[str, dict[int, int]]
# Held (shared) by a reader for its transaction, taken (exclusive) by a drop: a generation
# is never dropped under a reader, and a reader never starts on a dropped one (hold_for_reading).
_READING = "hashtext('analytics/reading/' || $1)"


def weights_json(weights: Weights) -> str:
    """The weights as stored with a generation (generations.weights)."""
    return json.dumps(dataclasses.asdict(weights), sort_keys=True)


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
    conn: Conn,
    state: str = "building",
    as_of_moment: datetime | None = None,
    stop_at: Offsets | None = None,
    weights: Weights | None = None,
) -> str:
    """A new, empty generation's schema with its tables (one transaction), noting the
    weights it is built with."""
    async with conn.transaction():
        number = await conn.fetchval("SELECT nextval('generation_numbers')")
        name = f"analytics_g{number}"
        await conn.execute(f"CREATE SCHEMA {name}")
        await _apply_ddl(conn, name)
        await conn.execute(
            "INSERT INTO generations (name, state, as_of_moment, stop_at, weights)"
            " VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)",
            name,
            state,
            as_of_moment,
            None if stop_at is None else json.dumps(stop_at),
            None if weights is None else weights_json(weights),
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


async def building_generation(conn: Conn, weights: Weights) -> str | None:
    """A rebuild left unfinished (killed) under the same weights: resumed rather than
    started afresh. One left under other weights is dropped (its rows would mix them)."""
    rows = await conn.fetch(
        """SELECT name, weights = $1::jsonb AS same FROM generations
            WHERE state = 'building' AND as_of_moment IS NULL ORDER BY created_at DESC""",
        weights_json(weights),
    )
    for row in rows:
        if not row["same"]:
            await drop_generation(conn, row["name"])
    same = [row["name"] for row in rows if row["same"]]
    return checked(same[0]) if same else None


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
        await conn.execute(f"SELECT pg_advisory_xact_lock({_READING})", name)  # readers on it finish first
        await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        await conn.execute("DELETE FROM generations WHERE name = $1", name)


async def hold_for_reading(conn: Conn, name: str) -> bool:
    """Keep generation `name` from being dropped until the caller's transaction ends; False
    if it was dropped already (between choosing it and this call: choose again)."""
    await conn.execute(f"SELECT pg_advisory_xact_lock_shared({_READING})", checked(name))
    # The catalog, not the transaction's snapshot: a drop committed a moment ago shows here.
    return bool(await conn.fetchval("SELECT to_regnamespace($1) IS NOT NULL", name))


async def positions(conn: Conn, name: str) -> Offsets:
    """The next offset to apply per topic and partition, as `name` has committed it."""
    out: Offsets = {}
    for r in await conn.fetch(f"SELECT topic, partition, next_offset FROM {checked(name)}.positions"):
        out.setdefault(r["topic"], {})[r["partition"]] = r["next_offset"]
    return out
