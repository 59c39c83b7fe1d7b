"""Membership's key store on a real PostgreSQL: creation races, rotation, shredding,
erased subjects, and moving every key to a new key-encryption key."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import asyncpg
import pytest

from alumni_kit.db import KIT_MIGRATIONS, apply_migrations
from alumni_kit.shredding import SubjectKey, open_event, seal_event
from membership.app import MIGRATIONS
from membership.rights import keys
from membership.rights.keys import ErasedSubjectError, KeyEncryption
from tests.stack import Stack
from tests.unit.test_shredding import registered
from usn_schemas.member import MemberRegisteredV1

pytestmark = pytest.mark.real

OLD_KEK = "old:an-old-key-encryption-secret-of-32-chars"
NEW_KEK = "new:a-new-key-encryption-secret-of-32-chars!"


async def _pool(dsn: str) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=6)
    assert pool is not None
    async with pool.acquire() as conn:
        await apply_migrations(conn, {"kit": KIT_MIGRATIONS, "membership": MIGRATIONS})
    return pool


async def test_keys_are_made_once_rotate_and_shred(stack: Stack, membership_db: str) -> None:
    keys.use_key_encryption(KeyEncryption(OLD_KEK))
    pool = await _pool(stack.service_dsn("membership", membership_db))
    subject = str(uuid.uuid4())

    async def make() -> SubjectKey:
        async with pool.acquire() as conn, conn.transaction():
            return await keys.subject_key(conn, subject)

    # Ten concurrent first uses agree on one key.
    made = await asyncio.gather(*(make() for _ in range(10)))
    assert len({k.secret for k in made}) == 1
    first = made[0]
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM subject_keys") == 1
        wrapped = await conn.fetchval("SELECT wrapped FROM subject_keys")
        assert first.secret not in wrapped  # stored wrapped, never as is
        second = await keys.rotate(conn, subject)
        assert second.version == 2
        assert (await keys.subject_key(conn, subject)).version == 2  # new messages use the newest
        both = await keys.lookup(conn, {first.id, second.id})
        assert both == {first.id: first.secret, second.id: second.secret}  # old messages still open
        assert await keys.shred(conn, subject) == 2
        assert await keys.lookup(conn, {first.id, second.id}) == {}
        await conn.execute("INSERT INTO erased_subjects VALUES ($1, now(), 'member', NULL, NULL)", subject)
        with pytest.raises(ErasedSubjectError):
            await keys.subject_key(conn, subject)
    await pool.close()


async def test_rewrap_moves_every_key_to_the_new_kek_and_messages_still_open(stack: Stack, membership_db: str) -> None:
    dsn = stack.service_dsn("membership", membership_db)
    keys.use_key_encryption(KeyEncryption(OLD_KEK))
    pool = await _pool(dsn)
    subjects = [str(uuid.uuid4()) for _ in range(25)]
    async with pool.acquire() as conn, conn.transaction():
        made = await keys.subject_keys(conn, subjects)
    sealed = seal_event(registered(), made[subjects[0]])
    keys.use_key_encryption(KeyEncryption(f"{NEW_KEK},{OLD_KEK}"))
    assert await keys.rewrap(dsn, batch=10) == 25
    assert await keys.rewrap(dsn, batch=10) == 0
    keys.use_key_encryption(KeyEncryption(NEW_KEK))  # the old KEK is gone
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM subject_keys WHERE kek_id = 'new'") == 25
        secrets = await keys.lookup(conn, {k.id for k in made.values()})
    assert secrets == {k.id: k.secret for k in made.values()}
    await pool.close()
    opened = open_event(sealed, secrets)  # sealed before the rewrap, opened after it
    assert opened is not None
    assert MemberRegisteredV1.model_validate_json(opened).data.family_name == "Nordmann"


async def test_operators_rotate_and_rewrap_from_the_command_line(stack: Stack, membership_db: str) -> None:
    dsn = stack.service_dsn("membership", membership_db)
    keys.use_key_encryption(KeyEncryption(OLD_KEK))
    pool = await _pool(dsn)
    subject = str(uuid.uuid4())
    async with pool.acquire() as conn, conn.transaction():
        first = await keys.subject_key(conn, subject)
    env = {**os.environ, "MEMBERSHIP_DATABASE_URL": dsn, "MEMBERSHIP_KEY_ENCRYPTION_KEYS": f"{NEW_KEK},{OLD_KEK}"}
    cli = [sys.executable, "-m", "membership.rights.keys"]
    assert "key version 2" in await _run([*cli, "rotate", subject], env)
    assert "rewrapped 1 keys under new" in await _run(
        [*cli, "rewrap"], env
    )  # version 2 was wrapped under `new` already
    keys.use_key_encryption(KeyEncryption(NEW_KEK))
    async with pool.acquire() as conn:
        assert (await keys.lookup(conn, {first.id}))[first.id] == first.secret
        assert (await keys.subject_key(conn, subject)).version == 2
    await pool.close()


async def _run(command: list[str], env: dict[str, str]) -> str:
    """The command's standard output, as an operator runs it (its own process)."""
    proc = await asyncio.create_subprocess_exec(*command, env=env, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    return out.decode()
