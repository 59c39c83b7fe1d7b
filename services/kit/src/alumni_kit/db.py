"""asyncpg pool and the forward-only SQL migrations runner."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# A plain connection or one borrowed from a pool: every query helper takes either.
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

log = logging.getLogger(__name__)

# Every instance of every service may start at once; one applies, the rest wait.
_MIGRATION_LOCK = 7_340_001


async def create_pool(dsn: str, max_size: int) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max_size, command_timeout=60)
    assert pool is not None
    return pool


KIT_MIGRATIONS = Path(__file__).parent / "migrations"


async def apply_migrations(conn: Conn, folders: dict[str, Path]) -> list[str]:
    """Apply `NNNN_*.sql` files not yet recorded, scope by scope, each in its own transaction.

    `folders` maps a scope ("kit", "membership") to its folder; applied files are
    recorded as "scope/name". Forward-only: an applied file whose text changed is
    an error, not a re-run. Returns the names applied now.
    """
    applied_now: list[str] = []
    # Lock first: two replicas starting at once on a fresh database would otherwise
    # race in CREATE TABLE IF NOT EXISTS (a unique violation in pg_type; seen in the bench).
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                 name text PRIMARY KEY, sha256 text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["name"]: r["sha256"] for r in await conn.fetch("SELECT name, sha256 FROM schema_migrations")}
        for scope, folder in folders.items():
            for path in sorted(folder.glob("[0-9][0-9][0-9][0-9]_*.sql")):
                name = f"{scope}/{path.name}"
                if await _apply_one(conn, name, path.read_text(), done.get(name)):
                    applied_now.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied_now


async def _apply_one(conn: Conn, name: str, sql: str, recorded_digest: str | None) -> bool:
    digest = hashlib.sha256(sql.encode()).hexdigest()
    if recorded_digest is not None:
        if recorded_digest != digest:
            raise RuntimeError(f"migration {name} changed after it was applied; add a new one instead")
        return False
    async with conn.transaction():
        await conn.execute(sql)
        await conn.execute("INSERT INTO schema_migrations (name, sha256) VALUES ($1, $2)", name, digest)
    log.info("applied migration %s", name)
    return True
