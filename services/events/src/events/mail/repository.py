"""SQL of the mail stage: whom a fact concerns, the event's version, reminders due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from alumni_kit.db import Conn

# Those still in the event (a seat, an offer, a place on the list), with a member.
_ACTIVE = ("registered", "offered", "waitlisted")


@dataclass(frozen=True)
class Registrant:
    registration_id: str
    member_id: str
    status: str
    offer_expires_at: datetime | None


_COLUMNS = "registration_id::text, member_id::text, status, offer_expires_at"


async def version(conn: Conn, event_id: str) -> int:
    """The event's version: the SEQUENCE of its calendar entries (0002_mail.sql's trigger)."""
    return int(await conn.fetchval("SELECT version FROM events WHERE event_id = $1", event_id))


async def registrant(conn: Conn, registration_id: str) -> Registrant | None:
    """The registration as it now stands, if it still has a member (erasure unlinks it)."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM registrations WHERE registration_id = $1 AND member_id IS NOT NULL", registration_id
    )
    return Registrant(**dict(row)) if row else None


async def active(conn: Conn, event_id: str, statuses: tuple[str, ...] = _ACTIVE) -> list[Registrant]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM registrations WHERE event_id = $1 AND member_id IS NOT NULL"
        " AND status = any($2::text[]) ORDER BY arrival",
        event_id,
        list(statuses),
    )
    return [Registrant(**dict(r)) for r in rows]


async def due_reminders(conn: Conn, now: datetime, hours: float) -> list[str]:
    """Published events starting within `hours` that have had no reminder yet."""
    rows = await conn.fetch(
        "SELECT e.event_id::text FROM events e WHERE e.status = 'published' AND e.starts_at > $1"
        " AND e.starts_at <= $2 AND NOT EXISTS (SELECT 1 FROM reminders_sent r WHERE r.event_id = e.event_id)",
        now,
        now + timedelta(hours=hours),
    )
    return [r["event_id"] for r in rows]


async def claim_reminder(conn: Conn, event_id: str, now: datetime) -> bool:
    """True for the one transaction (of any replica) that records the event's reminder."""
    done = await conn.fetchval(
        "INSERT INTO reminders_sent (event_id, sent_at) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
        event_id,
        now,
    )
    return bool(done)
