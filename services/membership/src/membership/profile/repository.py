"""The member's own profile: load it, save a validated `ProfileInput`, export it.

A save is one transaction: contact details on `members`, the rest in
`profiles`/`member_interests`, offers through volunteering.py, and the outbox
rows (`member-updated` sealed with her key when e-mail, phone or language
changed; one volunteer event per changed offer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alumni_kit.db import Conn
from alumni_kit.outbox import OutboxMessage, add_to_outbox
from membership import SOURCE
from membership.members import repository
from membership.profile import networks, volunteering
from membership.profile.rules import Language, ProfileInput
from membership.rights import keys
from usn_schemas.member import MemberSnapshot, MemberUpdatedData, MemberUpdatedV1


class EmailTakenError(Exception):
    """Another member already has this address (log-in links are looked up by address)."""


@dataclass(frozen=True)
class StoredProfile:
    member_id: str
    given_name: str
    email: str | None
    phone: str | None
    employer: str | None
    job_title: str | None
    language: Language
    interests: frozenset[str]
    offers: frozenset[str]


@dataclass(frozen=True)
class SaveOutcome:
    changed: tuple[str, ...]  # names of what changed: "email", "phone", "language", "employer", "offers", …
    messages: int  # events written to the outbox


async def load(conn: Conn, member_id: str) -> StoredProfile | None:
    row = await conn.fetchrow(
        "SELECT m.given_name, m.email, m.phone, p.employer, p.job_title, coalesce(p.language, 'nb') AS language"
        "  FROM members m LEFT JOIN profiles p USING (member_id) WHERE m.member_id = $1",
        member_id,
    )
    if row is None:
        return None
    interests = await conn.fetch("SELECT interest FROM member_interests WHERE member_id = $1", member_id)
    return StoredProfile(
        member_id=member_id,
        given_name=row["given_name"],
        email=row["email"],
        phone=row["phone"],
        employer=row["employer"],
        job_title=row["job_title"],
        language="en" if row["language"] == "en" else "nb",
        interests=frozenset(r["interest"] for r in interests),
        offers=frozenset(await volunteering.current_offers(conn, member_id)),
    )


async def lock_member(conn: Conn, member_id: str) -> bool:
    """Lock her for this transaction, in the graduated handler's order (student number, then row),
    so a profile save and a graduation of the same person never interleave their read and write."""
    student_number = await conn.fetchval("SELECT student_number FROM members WHERE member_id = $1", member_id)
    if student_number is not None:
        await repository.lock_student_numbers(conn, [student_number])
    return await conn.fetchval("SELECT true FROM members WHERE member_id = $1 FOR UPDATE", member_id) is not None


async def save(
    conn: Conn, member_id: str, wanted: ProfileInput, trace_headers: dict[str, str] | None = None
) -> SaveOutcome | None:
    """Store `wanted` (in the caller's transaction); None when the member does not exist."""
    if not await lock_member(conn, member_id):
        return None
    before = await load(conn, member_id)
    assert before is not None
    if wanted.email != before.email and await _email_taken(conn, member_id, wanted.email):
        raise EmailTakenError
    contact = [n for n in ("email", "phone", "language") if getattr(wanted, n) != getattr(before, n)]
    other = [n for n in ("employer", "job_title", "interests") if getattr(wanted, n) != getattr(before, n)]
    await _store(conn, member_id, wanted, contact_changed=bool({"email", "phone"} & set(contact)))
    messages = await volunteering.set_offers(conn, member_id, wanted.offers, trace_headers)
    if contact:
        messages.append(await _member_updated(conn, member_id, contact, wanted.language, trace_headers))
    await add_to_outbox(conn, messages)
    offers = ["offers"] if wanted.offers != before.offers else []
    return SaveOutcome(changed=tuple(contact + other + offers), messages=len(messages))


async def _email_taken(conn: Conn, member_id: str, email: str) -> bool:
    taken = await conn.fetchval(
        "SELECT true FROM members WHERE lower(email) = lower($1) AND member_id <> $2", email, member_id
    )
    return bool(taken)


async def _store(conn: Conn, member_id: str, p: ProfileInput, contact_changed: bool) -> None:
    if contact_changed:
        # contact_source 'member': she said so herself, and FS no longer overwrites it.
        await conn.execute(
            "UPDATE members SET email = $2, phone = $3, contact_source = 'member', updated_at = now()"
            " WHERE member_id = $1",
            member_id,
            p.email,
            p.phone,
        )
    await conn.execute(
        "INSERT INTO profiles (member_id, language, employer, job_title) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (member_id) DO UPDATE SET language = excluded.language, employer = excluded.employer,"
        " job_title = excluded.job_title, updated_at = now()",
        member_id,
        p.language,
        p.employer,
        p.job_title,
    )
    await conn.execute(
        "DELETE FROM member_interests WHERE member_id = $1 AND NOT interest = ANY($2::text[])",
        member_id,
        sorted(p.interests),
    )
    await conn.execute(
        "INSERT INTO member_interests (member_id, interest) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
        member_id,
        sorted(p.interests),
    )


async def _member_updated(
    conn: Conn, member_id: str, changed: list[str], language: Language, trace_headers: dict[str, str] | None
) -> OutboxMessage:
    [member] = await repository.get_members_by_id(conn, [member_id])
    snapshot = MemberSnapshot.model_validate(
        {**member, "faculties": sorted({p["faculty"] for p in member["programmes"]}), "language": language}
    )
    data = MemberUpdatedData(**dict(snapshot), changed=changed)
    event = MemberUpdatedV1.create(subject=member_id, data=data, source=SOURCE)
    key = await keys.subject_key(conn, member_id)
    return OutboxMessage(topic="member-updated", key=member_id, event=event, headers=trace_headers or {}, seal=key)


async def export_profile(conn: Conn, member_id: str) -> dict[str, Any]:
    """Art. 15: her profile, interests (with since when), offers (standing and history) and networks."""
    row = await conn.fetchrow(
        "SELECT language, employer, job_title, updated_at FROM profiles WHERE member_id = $1", member_id
    )
    interests = await conn.fetch(
        "SELECT interest, since FROM member_interests WHERE member_id = $1 ORDER BY interest", member_id
    )
    export: dict[str, Any] = _jsonable(
        {
            "profile": dict(row) if row else None,
            "interests": [dict(r) for r in interests],
            "volunteer_offers": await volunteering.export_offers(conn, member_id),
            "networks": await networks.export_memberships(conn, member_id),
        }
    )
    return export


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value.isoformat() if isinstance(value, datetime) else value
