"""Migrations on a real PostgreSQL server: apply on empty, idempotent, forward-only."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from alumni_kit.db import KIT_MIGRATIONS, apply_migrations
from membership.app import MIGRATIONS

pytestmark = pytest.mark.real
FOLDERS = {"kit": KIT_MIGRATIONS, "membership": MIGRATIONS}


async def test_migrations_apply_on_an_empty_database_then_do_nothing(membership_conn: asyncpg.Connection) -> None:
    first = await apply_migrations(membership_conn, FOLDERS)
    # Every file, in name order, kit first.
    expected = [f"kit/{f.name}" for f in sorted(KIT_MIGRATIONS.glob("*.sql"))]
    expected += [f"membership/{f.name}" for f in sorted(MIGRATIONS.glob("*.sql"))]
    assert expected[0] == "kit/0001_kit.sql"
    assert first == expected
    assert "membership/0001_members.sql" in first
    assert await apply_migrations(membership_conn, FOLDERS) == []
    tables = {r[0] for r in await membership_conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
    kit_tables = {"outbox", "outbox_quarantine", "inbox", "consumer_positions"}
    assert kit_tables | {"members", "programmes", "schema_migrations"} <= tables


async def test_a_changed_applied_migration_is_an_error(membership_conn: asyncpg.Connection, tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (x int);")
    await apply_migrations(membership_conn, {"x": tmp_path})
    (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (x bigint);")
    with pytest.raises(RuntimeError, match="changed after it was applied"):
        await apply_migrations(membership_conn, {"x": tmp_path})


async def test_a_failing_migration_leaves_nothing_half_applied(
    membership_conn: asyncpg.Connection, tmp_path: Path
) -> None:
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok (x int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (x int); SELECT no_such_function();")
    with pytest.raises(asyncpg.UndefinedFunctionError):
        await apply_migrations(membership_conn, {"x": tmp_path})
    assert await membership_conn.fetchval("SELECT to_regclass('half')") is None
    names = [r[0] for r in await membership_conn.fetch("SELECT name FROM schema_migrations ORDER BY name")]
    assert names == ["x/0001_ok.sql"]
