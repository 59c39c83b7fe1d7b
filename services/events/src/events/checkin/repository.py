"""The check-in's SQL: a registration as the door sees it, marking her attended, the
revocation list and the no-shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from alumni_kit.db import Conn


@dataclass(frozen=True)
class Seat:
    registration_id: str
    event_id: str
    member_id: str | None
    status: str
    arrival: int
    attended_at: datetime | None


_SEAT = "registration_id::text, event_id::text, member_id::text, status, arrival, attended_at"


async def seat(conn: Conn, registration_id: str) -> Seat | None:
    row = await conn.fetchrow(f"SELECT {_SEAT} FROM registrations WHERE registration_id = $1", registration_id)
    return Seat(**dict(row)) if row else None


async def seat_of_member(conn: Conn, event_id: str, member_id: str) -> Seat | None:
    row = await conn.fetchrow(
        f"SELECT {_SEAT} FROM registrations WHERE event_id = $1 AND member_id = $2", event_id, member_id
    )
    return Seat(**dict(row)) if row else None


async def mark_attended(conn: Conn, registration_id: str, at: datetime, by: str) -> None:
    """First redemption only (the caller holds the event's lock and saw `attended_at` empty)."""
    await conn.execute(
        "UPDATE registrations SET attended_at = $2, checked_in_by = $3"
        " WHERE registration_id = $1 AND attended_at IS NULL",
        registration_id,
        at,
        by,
    )


@dataclass(frozen=True)
class Revocations:
    version: int
    event_status: str
    revoked: list[str]


# One statement, so the version and the list are one snapshot. Revoked: every registration
# that held a code and no longer does: cancelled (also an erased member's place) and
# erased seat holders (member id gone). Waiting and offered ones never had a code.
_REVOCATIONS = """
SELECT e.last_sequence, e.status,
       array(SELECT r.registration_id::text FROM registrations r
              WHERE r.event_id = e.event_id
                AND (r.status IN ('cancelled', 'expired') OR r.member_id IS NULL)
              ORDER BY r.registration_id) AS revoked
  FROM events e WHERE e.event_id = $1
"""


async def revocations(conn: Conn, event_id: str) -> Revocations | None:
    row = await conn.fetchrow(_REVOCATIONS, event_id)
    if row is None:
        return None
    return Revocations(int(row["last_sequence"]), str(row["status"]), list(row["revoked"]))


async def no_shows(conn: Conn, event_id: str) -> int:
    """Seats never checked in (asked once the event has ended)."""
    n = await conn.fetchval(
        "SELECT count(*) FROM registrations WHERE event_id = $1 AND status = 'registered' AND attended_at IS NULL",
        event_id,
    )
    return int(n)
