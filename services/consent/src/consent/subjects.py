"""Consent's copy of members (from member-registered / member-updated), pending
double opt-ins, and erasure."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alumni_kit.db import Conn


@dataclass(frozen=True)
class Subject:
    member_id: str
    given_name: str | None
    email: str | None
    language: str
    faculties: list[str]
    email_verified_at: datetime | None
    invited_at: datetime | None

    @property
    def language_code(self) -> str:
        return self.language if self.language in ("nb", "en") else "nb"


_COLUMNS = "member_id, given_name, email, language, faculties, email_verified_at, invited_at"


async def get(conn: Conn, member_id: str) -> Subject | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM subjects WHERE member_id = $1", member_id)
    return Subject(**dict(row)) if row else None


@dataclass(frozen=True)
class MemberCopy:
    member_id: str
    given_name: str
    email: str | None
    faculties: list[str]
    source_time: datetime


async def upsert(conn: Conn, copies: list[MemberCopy], invite: set[str]) -> list[str]:
    """Keep the newest copy of each member (by event time). Of the ids in `invite`, returns
    those that still need an invitation (an address, none sent yet), marked invited.

    A changed address is no longer verified: the next e-mail consent needs a new
    double opt-in. Erased members are not brought back by a replayed event.
    """
    if not copies:
        return []
    newest: dict[str, MemberCopy] = {}
    for c in copies:
        if c.member_id not in newest or newest[c.member_id].source_time <= c.source_time:
            newest[c.member_id] = c
    rows = list(newest.values())
    await lock_members(conn, [c.member_id for c in rows])
    # A confirmation mailed to an address she no longer has must not prove the new one.
    await conn.execute(
        """DELETE FROM pending_optins p USING subjects s, unnest($1::text[], $2::text[]) AS u(id, email)
            WHERE p.member_id = u.id AND s.member_id = u.id AND s.email IS DISTINCT FROM u.email""",
        [c.member_id for c in rows],
        [c.email for c in rows],
    )
    await conn.execute(
        """INSERT INTO subjects AS s (member_id, given_name, email, faculties, source_time)
           SELECT u.id, u.name, u.email, string_to_array(u.faculties, ','), u.at
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
                  AS u(id, name, email, faculties, at)
            WHERE NOT EXISTS (SELECT 1 FROM erased_members e WHERE e.member_id = u.id)
           ON CONFLICT (member_id) DO UPDATE
              SET given_name = excluded.given_name, email = excluded.email, faculties = excluded.faculties,
                  source_time = excluded.source_time,
                  email_verified_at = CASE WHEN s.email IS NOT DISTINCT FROM excluded.email
                                           THEN s.email_verified_at END
            WHERE s.source_time <= excluded.source_time""",
        [c.member_id for c in rows],
        [c.given_name for c in rows],
        [c.email for c in rows],
        [",".join(c.faculties) for c in rows],
        [c.source_time for c in rows],
    )
    if not invite:
        return []
    invited = await conn.fetch(
        """UPDATE subjects SET invited_at = now()
            WHERE member_id = any($1::text[]) AND invited_at IS NULL AND email IS NOT NULL
           RETURNING member_id""",
        sorted(invite),
    )
    return [r["member_id"] for r in invited]


async def set_language(conn: Conn, member_id: str, language: str) -> None:
    """The language she last used in the preference centre: her mails follow it."""
    await conn.execute("UPDATE subjects SET language = $2 WHERE member_id = $1", member_id, language)


async def lock_members(conn: Conn, member_ids: list[str]) -> None:
    """Serialise member events and erasure per member (in id order: no deadlock). Without
    it, an upsert racing an erasure could bring her row back after the delete."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(id, 7340103)) FROM unnest($1::text[]) AS id ORDER BY id",
        sorted(set(member_ids)),
    )


async def get_many(conn: Conn, member_ids: list[str]) -> list[Subject]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM subjects WHERE member_id = any($1::text[])", member_ids)
    return [Subject(**dict(r)) for r in rows]


async def erase(conn: Conn, member_id: str, erased_at: datetime) -> None:
    """GDPR art. 17 for consent: the member copy, state and pending opt-ins go; the
    ledger keeps each fact without who it was about (docs/consent.md, "Erasure")."""
    await lock_members(conn, [member_id])
    await conn.execute("DELETE FROM subjects WHERE member_id = $1", member_id)  # cascades
    await conn.execute("SET LOCAL consent.erasing = 'on'")
    await conn.execute(
        "UPDATE ledger SET member_id = NULL, reason = NULL, actor = NULL, erased = true WHERE member_id = $1",
        member_id,
    )
    await conn.execute("SET LOCAL consent.erasing = 'off'")
    # Nothing about her that is not yet on the broker goes there: mails with her address, her facts.
    await conn.execute("DELETE FROM outbox WHERE key = $1", member_id.encode())
    await conn.execute(
        "INSERT INTO erased_members (member_id, erased_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        member_id,
        erased_at,
    )


# ---- pending double opt-ins ----------------------------------------------------------------------------------


async def add_pending_optin(
    conn: Conn,
    nonce: str,
    member_id: str,
    purposes: list[str],
    notices: list[str],
    notice_version: str,
    language: str,
    expires_at: datetime,
    address: str,
) -> None:
    """Remember what was asked, the notice shown, and (as a hash) the address the link goes to."""
    await conn.execute(
        "INSERT INTO pending_optins (nonce, member_id, purposes, notices, notice_version, language, expires_at,"
        " address_sha256) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        nonce,
        member_id,
        purposes,
        notices,
        notice_version,
        language,
        expires_at,
        address_hash(address),
    )


def address_hash(address: str) -> str:
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


def same_address(pending: dict[str, Any], subject: Subject) -> bool:
    """Does the confirmation link still prove the member's current address?"""
    return subject.email is not None and pending["address_sha256"] == address_hash(subject.email)


async def lock(conn: Conn, member_id: str) -> Subject | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM subjects WHERE member_id = $1 FOR UPDATE", member_id)
    return Subject(**dict(row)) if row else None


async def pending_optin(conn: Conn, nonce: str, member_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM pending_optins WHERE nonce = $1 AND member_id = $2", nonce, member_id)
    return dict(row) if row else None


async def lock_pending_optin(conn: Conn, nonce: str) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM pending_optins WHERE nonce = $1 FOR UPDATE", nonce)
    return dict(row) if row else None


async def confirm_optin(conn: Conn, nonce: str, member_id: str) -> None:
    await conn.execute("UPDATE pending_optins SET confirmed_at = now() WHERE nonce = $1", nonce)
    await conn.execute("UPDATE subjects SET email_verified_at = now() WHERE member_id = $1", member_id)


async def awaiting_confirmation(conn: Conn, member_id: str) -> set[str]:
    """Purposes with an unconfirmed, unexpired opt-in request."""
    rows = await conn.fetch(
        "SELECT DISTINCT unnest(purposes) AS p FROM pending_optins"
        " WHERE member_id = $1 AND confirmed_at IS NULL AND expires_at > now()",
        member_id,
    )
    return {r["p"] for r in rows}
