"""Per-subject keys for crypto-shredding (alumni_kit/shredding.py), held here only.

Each subject's data key is stored wrapped (AES-GCM) under a key-encryption key
(KEK) from `MEMBERSHIP_KEY_ENCRYPTION_KEYS`; the first KEK wraps new keys, all
of them unwrap, and `python -m membership.rights.keys rewrap` moves every row to the
first one, so a KEK is retired by rewrapping and then removing it. A subject's
data key rotates by adding a version (`rotate`): new messages use the newest,
old ones still open with theirs until erasure deletes them all.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
from collections.abc import Callable, Iterable

import asyncpg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from alumni_kit.db import Conn
from alumni_kit.shredding import KeyId, SubjectKey, new_key

_NONCE = 12


class ErasedSubjectError(Exception):
    """No key is ever made again for an erased subject."""


class KeyEncryption:
    """The KEKs, from 'kid:secret,kid:secret' (first wraps; secrets of 32+ characters)."""

    def __init__(self, spec: str) -> None:
        self._keks: dict[str, bytes] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            kid, sep, secret = part.partition(":")
            if not sep or not kid or len(secret) < 32:
                raise ValueError("key-encryption keys are 'kid:secret' pairs, secrets of at least 32 characters")
            # SHA-256 turns any long secret into an AES-256 key.
            self._keks[kid] = hashlib.sha256(secret.encode()).digest()
        if not self._keks:
            raise ValueError("at least one key-encryption key is required")
        self.current_id = next(iter(self._keks))

    def wrap(self, key: SubjectKey) -> tuple[str, bytes]:
        nonce = os.urandom(_NONCE)
        sealed = AESGCM(self._keks[self.current_id]).encrypt(nonce, key.secret, _aad(key.id))
        return self.current_id, nonce + sealed

    def unwrap(self, key_id: KeyId, kek_id: str, wrapped: bytes) -> bytes:
        if kek_id not in self._keks:
            raise KeyError(f"key-encryption key {kek_id!r} is not configured")
        return AESGCM(self._keks[kek_id]).decrypt(wrapped[:_NONCE], wrapped[_NONCE:], _aad(key_id))


def _aad(key_id: KeyId) -> bytes:
    return f"{key_id[0]}.{key_id[1]}".encode()


_encryption: KeyEncryption | None = None


def use_key_encryption(encryption: KeyEncryption) -> None:
    """Set once at start (create_app): the KEKs every key operation of this process uses."""
    global _encryption
    _encryption = encryption


def _kek() -> KeyEncryption:
    if _encryption is None:
        raise RuntimeError("membership.rights.keys.use_key_encryption() was not called")
    return _encryption


async def subject_key(conn: Conn, subject_id: str) -> SubjectKey:
    """The key new messages about `subject_id` are sealed with (made if missing)."""
    return (await subject_keys(conn, [subject_id]))[subject_id]


async def subject_keys(conn: Conn, subject_ids: Iterable[str]) -> dict[str, SubjectKey]:
    """The newest key of each subject, creating missing ones (a backfill makes 500 a batch).

    Raises ErasedSubjectError if any of them was erased. Concurrent creators of
    the same key agree: the insert that loses the race is ignored and re-read.
    """
    wanted = sorted(set(subject_ids))
    if not wanted:
        return {}
    erased = await erased_among(conn, wanted)
    if erased:
        raise ErasedSubjectError(f"{len(erased)} of the subjects were erased")
    found = await _newest(conn, wanted)
    made = {s: new_key(s) for s in wanted if s not in found}
    if made:
        wrapped = [_kek().wrap(k) for k in made.values()]
        # One statement for the whole batch; RETURNING says whose key is ours.
        inserted = await conn.fetch(
            "INSERT INTO subject_keys (subject_id, version, kek_id, wrapped)"
            " SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::bytea[])"
            " ON CONFLICT DO NOTHING RETURNING subject_id::text",
            list(made),
            [1] * len(made),
            [kek_id for kek_id, _ in wrapped],
            [blob for _, blob in wrapped],
        )
        ours = {r[0] for r in inserted}
        found |= {s: k for s, k in made.items() if s in ours}
        lost = [s for s in made if s not in ours]  # another transaction made them first
        if lost:
            found |= await _newest(conn, lost)
    return found


async def erased_among(conn: Conn, subject_ids: list[str]) -> set[str]:
    """Which of `subject_ids` were erased (no key is ever made for them again)."""
    rows = await conn.fetch(
        "SELECT subject_id::text FROM erased_subjects WHERE subject_id = ANY($1::uuid[])", subject_ids
    )
    return {r[0] for r in rows}


def new_subject_keys(subject_ids: Iterable[str]) -> dict[str, SubjectKey]:
    """Keys for subjects that cannot have one yet (ids this transaction just made); see store_new."""
    return {s: new_key(s) for s in subject_ids}


async def store_new(conn: Conn, made: list[SubjectKey]) -> None:
    """Store brand-new keys with COPY (a backfill registers 500 members a batch). Only for
    fresh ids: there is nothing to race with and no erasure of an id nobody has seen."""
    if made:
        wrapped = [(k.subject_id, k.version, *_kek().wrap(k)) for k in made]
        await conn.copy_records_to_table(
            "subject_keys", records=wrapped, columns=["subject_id", "version", "kek_id", "wrapped"]
        )


async def _newest(conn: Conn, subject_ids: list[str]) -> dict[str, SubjectKey]:
    rows = await conn.fetch(
        "SELECT DISTINCT ON (subject_id) subject_id::text, version, kek_id, wrapped FROM subject_keys"
        " WHERE subject_id = ANY($1::uuid[]) ORDER BY subject_id, version DESC",
        subject_ids,
    )
    return {r["subject_id"]: _unwrapped(r) for r in rows}


async def lookup(conn: Conn, wanted: Iterable[KeyId]) -> dict[KeyId, bytes]:
    """The secrets of the given (subject, version) keys that still exist."""
    pairs = list(wanted)
    rows = await conn.fetch(
        "SELECT k.subject_id::text, k.version, k.kek_id, k.wrapped"
        " FROM unnest($1::uuid[], $2::int[]) AS w(subject_id, version)"
        " JOIN subject_keys k USING (subject_id, version)",
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    )
    return {(r["subject_id"], r["version"]): _unwrapped(r).secret for r in rows}


async def rotate(conn: Conn, subject_id: str) -> SubjectKey:
    """Add a newer key for the subject; messages from now on are sealed with it."""
    current = await subject_key(conn, subject_id)
    key = new_key(subject_id, current.version + 1)
    kek_id, wrapped = _kek().wrap(key)
    await conn.execute(
        "INSERT INTO subject_keys (subject_id, version, kek_id, wrapped) VALUES ($1, $2, $3, $4)",
        subject_id,
        key.version,
        kek_id,
        wrapped,
    )
    return key


async def shred(conn: Conn, subject_id: str) -> int:
    """Delete every key of the subject: all that was sealed with them is unreadable."""
    deleted = await conn.execute("DELETE FROM subject_keys WHERE subject_id = $1", subject_id)
    return int(deleted.split()[-1])


def _unwrapped(row: asyncpg.Record) -> SubjectKey:
    key_id: KeyId = (row["subject_id"], row["version"])
    return SubjectKey(key_id[0], key_id[1], _kek().unwrap(key_id, row["kek_id"], row["wrapped"]))


class LocalKeyRing:
    """Membership's own key ring (the kit's KeyRing), straight from its table."""

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool  # the runtime's, once started

    async def lookup(self, wanted: set[KeyId]) -> dict[KeyId, bytes]:
        async with self._pool().acquire() as conn:
            return await lookup(conn, wanted)

    async def current(self, subject_ids: set[str]) -> dict[str, SubjectKey]:
        async with self._pool().acquire() as conn, conn.transaction():
            return await subject_keys(conn, subject_ids)


async def rewrap(database_url: str, batch: int = 1000) -> int:
    """Re-wrap every key not under the current KEK; returns how many moved."""
    conn = await asyncpg.connect(database_url)
    moved = 0
    try:
        while True:
            async with conn.transaction():
                rows = await conn.fetch(
                    "SELECT subject_id::text, version, kek_id, wrapped FROM subject_keys WHERE kek_id <> $1"
                    " LIMIT $2 FOR UPDATE SKIP LOCKED",
                    _kek().current_id,
                    batch,
                )
                if not rows:
                    return moved
                for row in rows:
                    kek_id, wrapped = _kek().wrap(_unwrapped(row))
                    await conn.execute(
                        "UPDATE subject_keys SET kek_id = $3, wrapped = $4 WHERE subject_id = $1 AND version = $2",
                        row["subject_id"],
                        row["version"],
                        kek_id,
                        wrapped,
                    )
                moved += len(rows)
    finally:
        await conn.close()


async def rotate_one(database_url: str, subject_id: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            # One rotation per subject at a time; a concurrent one waits instead of colliding.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))", subject_id)
            return (await rotate(conn, subject_id)).version
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    from membership.settings import MembershipSettings

    parser = argparse.ArgumentParser(prog="python -m membership.rights.keys", description="Subject key maintenance.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("rewrap", help="move every key under the first key-encryption key")
    rotate_cmd = commands.add_parser("rotate", help="give one subject a new key for new messages")
    rotate_cmd.add_argument("subject_id")
    args = parser.parse_args(argv)
    settings = MembershipSettings()
    use_key_encryption(KeyEncryption(settings.key_encryption_keys.get_secret_value()))
    if args.command == "rotate":
        version = asyncio.run(rotate_one(settings.database_url, args.subject_id))
        print(f"subject {args.subject_id} now seals with key version {version}")
        return 0
    moved = asyncio.run(rewrap(settings.database_url))
    print(f"rewrapped {moved} keys under {_kek().current_id}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
