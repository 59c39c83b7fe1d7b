"""asyncpg access to members and programmes; batch-shaped for backfills."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import asyncpg

from alumni_kit.db import Conn
from membership.members.domain import Member
from usn_schemas.member import Programme

_SELECT_MEMBERS = """
SELECT member_id::text, student_number, given_name, family_name, email, phone, status, contact_source, field_defects
  FROM members WHERE student_number = ANY($1::text[])"""

_LOCK_STUDENTS = """
SELECT pg_advisory_xact_lock(k) FROM (
  SELECT DISTINCT hashtextextended(n, 0) AS k FROM unnest($1::text[]) AS t(n) ORDER BY 1) AS keys"""

_SELECT_PROGRAMMES = """
SELECT member_id::text, programme_code, degree_level, programme_name, faculty, campus,
       graduation_date, credits::float8 AS credits, source_event_id
  FROM programmes WHERE member_id = ANY($1::uuid[])"""

# Batches are staged with COPY into session-local tables and merged with one
# INSERT … SELECT each: far fewer round trips and parse/bind steps than a row-wise upsert.
_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS members_staging (LIKE members INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS programmes_staging (LIKE programmes INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
DELETE FROM members_staging; DELETE FROM programmes_staging"""
_MEMBER_COLUMNS = [
    "member_id",
    "student_number",
    "given_name",
    "family_name",
    "email",
    "phone",
    "status",
    "contact_source",
    "field_defects",
]
_PROGRAMME_COLUMNS = [
    "member_id",
    "programme_code",
    "degree_level",
    "programme_name",
    "faculty",
    "campus",
    "graduation_date",
    "credits",
    "source_event_id",
]

_MERGE = """
INSERT INTO members (member_id, student_number, given_name, family_name, email, phone, status, contact_source,
                     field_defects)
SELECT member_id, student_number, given_name, family_name, email, phone, status, contact_source, field_defects
  FROM members_staging
ON CONFLICT (member_id) DO UPDATE SET
  given_name = excluded.given_name, family_name = excluded.family_name,
  email = excluded.email, phone = excluded.phone, status = excluded.status,
  contact_source = excluded.contact_source, field_defects = excluded.field_defects, updated_at = now();
INSERT INTO programmes (member_id, programme_code, degree_level, programme_name, faculty, campus,
                        graduation_date, credits, source_event_id)
SELECT member_id, programme_code, degree_level, programme_name, faculty, campus,
       graduation_date, credits, source_event_id FROM programmes_staging
ON CONFLICT (member_id, programme_code, degree_level) DO UPDATE SET
  programme_name = excluded.programme_name, faculty = excluded.faculty, campus = excluded.campus,
  graduation_date = excluded.graduation_date, credits = excluded.credits,
  source_event_id = excluded.source_event_id"""


async def lock_and_load_members(conn: Conn, student_numbers: Iterable[str]) -> dict[str, Member]:
    """The stored members for `student_numbers`, locked for this transaction.

    Normally one consumer owns a student number's partition; during a rebalance
    two may briefly hold the same events. The per-student-number advisory locks
    (taken in a fixed order, so never a deadlock) serialise them.
    """
    numbers = sorted(set(student_numbers))
    await lock_student_numbers(conn, numbers)
    rows = await conn.fetch(_SELECT_MEMBERS, numbers)
    members = {r["member_id"]: _member(r) for r in rows}
    if members:
        for p in await conn.fetch(_SELECT_PROGRAMMES, list(members)):
            m = members[p["member_id"]]
            key = (p["programme_code"], p["degree_level"])
            m.programmes[key] = _programme(p)
            m.programme_sources[key] = p["source_event_id"]
    return {m.student_number: m for m in members.values() if m.student_number is not None}


async def save_members(conn: Conn, members: Iterable[Member]) -> None:
    """Insert or update `members` and all their programmes: COPY to staging, then merge."""
    members = list(members)
    if not members:
        return
    await conn.execute(_STAGING)
    await conn.copy_records_to_table(
        "members_staging",
        columns=_MEMBER_COLUMNS,
        records=[
            (
                m.member_id,
                m.student_number,
                m.given_name,
                m.family_name,
                m.email,
                m.phone,
                m.status,
                m.contact_source,
                json.dumps(m.defects),
            )
            for m in members
        ],
    )
    await conn.copy_records_to_table(
        "programmes_staging",
        columns=_PROGRAMME_COLUMNS,
        records=[
            (
                m.member_id,
                p.programme_code,
                p.degree_level,
                p.programme_name,
                p.faculty,
                p.campus,
                p.graduation_date,
                p.credits,
                m.programme_sources[key],
            )
            for m in members
            for key, p in m.programmes.items()
        ],
    )
    await conn.execute(_MERGE)
    await _save_history(conn, members)


_INSERT_HISTORY = """
INSERT INTO member_history (member_id, what, detail, source_event_id)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::text[])"""


async def _save_history(conn: Conn, members: list[Member]) -> None:
    """Write the members' new history entries (after the members themselves), then forget them."""
    entries = [(m.member_id, e) for m in members for e in m.new_history]
    if not entries:
        return
    await conn.execute(
        _INSERT_HISTORY,
        [member_id for member_id, _ in entries],
        [e.what for _, e in entries],
        [json.dumps(e.detail) for _, e in entries],
        [e.source_event_id for _, e in entries],
    )
    for m in members:
        m.new_history.clear()


async def member_history(conn: Conn, member_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT at, what, detail, source_event_id FROM member_history WHERE member_id = $1 ORDER BY at, id", member_id
    )
    return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]


async def lock_student_numbers(conn: Conn, student_numbers: Iterable[str]) -> None:
    """The same per-student-number locks the graduated handler takes: a sign-up and a
    graduation of one student are serialised, so neither creates a second member."""
    await conn.execute(_LOCK_STUDENTS, sorted(set(student_numbers)))


async def member_exists(conn: Conn, member_id: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM members WHERE member_id = $1", member_id))


async def member_id_of_student(conn: Conn, student_number: str) -> str | None:
    value = await conn.fetchval("SELECT member_id::text FROM members WHERE student_number = $1", student_number)
    return str(value) if value is not None else None


async def member_id_by_email(conn: Conn, email: str) -> str | None:
    """The member whose e-mail is `email` (case-insensitive); the oldest if, rarely, several share one."""
    value = await conn.fetchval(
        "SELECT member_id::text FROM members WHERE lower(email) = lower($1) ORDER BY created_at LIMIT 1", email
    )
    return str(value) if value is not None else None


def _member(r: asyncpg.Record) -> Member:
    return Member(
        member_id=r["member_id"],
        student_number=r["student_number"],
        given_name=r["given_name"],
        family_name=r["family_name"],
        email=r["email"],
        phone=r["phone"],
        status=r["status"],
        contact_source=r["contact_source"],
        defects=json.loads(r["field_defects"]),
    )


def _programme(r: asyncpg.Record) -> Programme:
    return Programme(
        programme_code=r["programme_code"],
        programme_name=r["programme_name"],
        faculty=r["faculty"],
        campus=r["campus"],
        degree_level=r["degree_level"],
        graduation_date=r["graduation_date"],
        credits=r["credits"],
    )


async def get_members_by_id(conn: Conn, member_ids: list[str]) -> list[dict[str, Any]]:
    """Members with programmes and recorded field defects, for the staff API."""
    rows = await conn.fetch(
        "SELECT member_id::text, student_number, given_name, family_name, email, phone, status, field_defects,"
        " created_at, updated_at FROM members WHERE member_id = ANY($1::uuid[])",
        member_ids,
    )
    progs = await conn.fetch(_SELECT_PROGRAMMES, member_ids)
    programmes: dict[str, list[dict[str, Any]]] = {}
    for p in progs:
        programmes.setdefault(p["member_id"], []).append(_programme(p).model_dump(mode="json"))
    by_id = {
        r["member_id"]: {
            **dict(r),
            "field_defects": json.loads(r["field_defects"]),
            "programmes": programmes.get(r["member_id"], []),
        }
        for r in rows
    }
    return [by_id[i] for i in member_ids if i in by_id]
