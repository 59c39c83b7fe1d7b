"""Erasure (GDPR art. 17) in membership, and the guard against replayed graduations.

`erase_member` runs in one transaction: her keys are deleted (every sealed field
about her, on every topic, becomes unreadable), her rows go (tables holding her
data reference `members` ON DELETE CASCADE), a tombstone remembers her student
number only as an HMAC with the degrees she had, and `member-erased` goes out
through the outbox so every other service deletes its rows.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from alumni_kit.consent_view import forget_member
from alumni_kit.db import Conn
from alumni_kit.outbox import OutboxMessage, add_to_outbox
from membership import SOURCE
from membership.members import repository
from membership.rights import keys
from usn_schemas.graduated import GraduatedV1
from usn_schemas.member import MemberErasedV1, MemberErasure

Requester = Literal["member", "staff"]


class NoSuchMemberError(Exception):
    pass


@dataclass(frozen=True)
class Erased:
    member_id: str
    erased_at: datetime
    already: bool  # erased before this request (idempotent answer)
    # Kept only in memory, to delete her consumed `graduated` records after the commit (inbound.py).
    student_number: str | None = None


def student_hash(pepper: bytes, student_number: str) -> bytes:
    return hmac.new(pepper, student_number.strip().encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class Standing:
    """Whether a member exists or was erased, and the faculties of her degrees: what
    decides which staff may act on her rights requests."""

    exists: bool
    erased: bool
    faculties: list[str]


async def standing(conn: Conn, member_id: str) -> Standing:
    faculties = await conn.fetch("SELECT DISTINCT faculty FROM programmes WHERE member_id = $1", member_id)
    exists = await conn.fetchval("SELECT 1 FROM members WHERE member_id = $1", member_id)
    erased = await conn.fetchval("SELECT 1 FROM erased_subjects WHERE subject_id = $1", member_id)
    return Standing(exists is not None, erased is not None, [f["faculty"] for f in faculties])


async def erase_member(
    conn: Conn, pepper: bytes, member_id: str, requested_by: Requester, actor: str | None, reason: str | None
) -> Erased:
    """Erase the member in the caller's transaction; erasing twice answers with the first erasure."""
    student_number = await conn.fetchval("SELECT student_number FROM members WHERE member_id = $1", member_id)
    if student_number is not None:
        # The graduated handler's lock: a graduation being applied now finishes first,
        # and any applied after this commit sees the tombstone.
        await repository.lock_student_numbers(conn, [student_number])
    member = await conn.fetchrow("SELECT student_number FROM members WHERE member_id = $1 FOR UPDATE", member_id)
    if member is None:
        earlier = await conn.fetchval("SELECT erased_at FROM erased_subjects WHERE subject_id = $1", member_id)
        if earlier is None:
            raise NoSuchMemberError(member_id)
        return Erased(member_id, earlier, already=True)
    erased_at: datetime = await conn.fetchval("SELECT now()")
    if member["student_number"] is not None:  # an approved applicant has none
        await _tombstone(conn, student_hash(pepper, member["student_number"]), member_id, erased_at)
    await conn.execute(
        "INSERT INTO erased_subjects (subject_id, erased_at, requested_by, actor, reason) VALUES ($1, $2, $3, $4, $5)",
        member_id,
        erased_at,
        requested_by,
        actor,
        reason,
    )
    await keys.shred(conn, member_id)
    await conn.execute("DELETE FROM members WHERE member_id = $1", member_id)
    await forget_member(conn, member_id)  # membership's consent view has no foreign key to members
    data = MemberErasure(member_id=member_id, erased_at=erased_at, requested_by=requested_by)
    event = MemberErasedV1.create(subject=member_id, data=data, source=SOURCE)
    await add_to_outbox(conn, [OutboxMessage(topic="member-erased", key=member_id, event=event)])
    return Erased(member_id, erased_at, already=False, student_number=member["student_number"])


async def _tombstone(conn: Conn, hashed: bytes, member_id: str, erased_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO erased_students (student_hash, erased_at) VALUES ($1, $2)"
        " ON CONFLICT (student_hash) DO UPDATE SET erased_at = greatest(erased_students.erased_at, EXCLUDED.erased_at)",
        hashed,
        erased_at,
    )
    await conn.execute(
        "INSERT INTO erased_degrees (student_hash, programme_code, degree_level, graduation_date)"
        " SELECT $1, programme_code, degree_level, graduation_date FROM programmes WHERE member_id = $2"
        " ON CONFLICT DO NOTHING",
        hashed,
        member_id,
    )


async def old_facts_of_erased(conn: Conn, pepper: bytes, events: list[GraduatedV1]) -> set[str]:
    """Ids of the `events` that only repeat what an erased member had.

    A graduation is an old fact when it was published before her erasure, or
    names a degree she had when she was erased (FS may re-send history with new
    event ids and times). Any other graduation of that student number is a new
    fact, and makes a new member.
    """
    hashes = {e.id: student_hash(pepper, e.data.student_number) for e in events}
    rows = await conn.fetch(
        "SELECT s.student_hash, s.erased_at, d.programme_code, d.degree_level, d.graduation_date"
        " FROM erased_students s LEFT JOIN erased_degrees d USING (student_hash)"
        " WHERE s.student_hash = ANY($1::bytea[])",
        list(set(hashes.values())),
    )
    if not rows:
        return set()
    erased_at = {r["student_hash"]: r["erased_at"] for r in rows}
    degrees = {(r["student_hash"], r["programme_code"], r["degree_level"], r["graduation_date"]) for r in rows}
    old = set()
    for e in events:
        hashed = hashes[e.id]
        if hashed not in erased_at:
            continue
        degree = (hashed, e.data.programme_code, e.data.degree_level, e.data.graduation_date)
        if e.time <= erased_at[hashed] or degree in degrees:
            old.add(e.id)
    return old
