"""The events service's SQL: events, registrations, the waiting list, offers.

Every change to an event's registrations runs with the event's row locked
(`lock_event`, SELECT … FOR UPDATE): see events/registrations.py for why a row lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alumni_kit.db import Conn
from events.rules import Seats
from usn_schemas.events import EventDefinition

_EVENT_COLUMNS = (
    "event_id::text, organiser, definition::text, starts_at, ends_at, registration_deadline, capacity, offer_hours,"
    " status, created_by, created_at, published_at, cancelled_at"
)


@dataclass(frozen=True)
class Event:
    event_id: str
    organiser: str
    definition: EventDefinition
    starts_at: datetime
    ends_at: datetime
    registration_deadline: datetime
    capacity: int
    offer_hours: float
    status: str
    created_by: str
    created_at: datetime
    published_at: datetime | None
    cancelled_at: datetime | None


def _event(row: Any) -> Event:
    values = dict(row)
    values["definition"] = EventDefinition.model_validate_json(values["definition"])
    return Event(**values)


@dataclass(frozen=True)
class Registration:
    registration_id: str
    event_id: str
    member_id: str | None
    status: str
    arrival: int
    offer_expires_at: datetime | None


_REGISTRATION_COLUMNS = "registration_id::text, event_id::text, member_id::text, status, arrival, offer_expires_at"


async def create_event(
    conn: Conn, event_id: str, definition: EventDefinition, deadline: datetime, created_by: str
) -> None:
    d = definition
    await conn.execute(
        "INSERT INTO events (event_id, organiser, definition, starts_at, ends_at, registration_deadline, capacity,"
        " offer_hours, created_by) VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8, $9)",
        event_id,
        d.organiser,
        d.model_dump_json(),
        d.starts_at,
        d.ends_at,
        deadline,
        d.capacity,
        d.offer_hours,
        created_by,
    )


async def get_event(conn: Conn, event_id: str) -> Event | None:
    row = await conn.fetchrow(f"SELECT {_EVENT_COLUMNS} FROM events WHERE event_id = $1", event_id)
    return _event(row) if row else None


async def lock_event(conn: Conn, event_id: str) -> Event | None:
    """The event, its row locked until the transaction ends: every change to its
    registrations, and the counts they depend on, happen one at a time per event."""
    row = await conn.fetchrow(f"SELECT {_EVENT_COLUMNS} FROM events WHERE event_id = $1 FOR UPDATE", event_id)
    return _event(row) if row else None


async def update_event(conn: Conn, event_id: str, definition: EventDefinition, deadline: datetime) -> None:
    d = definition
    await conn.execute(
        "UPDATE events SET organiser = $2, definition = $3::jsonb, starts_at = $4, ends_at = $5,"
        " registration_deadline = $6, capacity = $7, offer_hours = $8 WHERE event_id = $1",
        event_id,
        d.organiser,
        d.model_dump_json(),
        d.starts_at,
        d.ends_at,
        deadline,
        d.capacity,
        d.offer_hours,
    )


async def set_event_status(conn: Conn, event_id: str, status: str, at: datetime) -> None:
    column = {"published": "published_at", "cancelled": "cancelled_at"}[status]
    await conn.execute(f"UPDATE events SET status = $2, {column} = $3 WHERE event_id = $1", event_id, status, at)


async def next_sequences(conn: Conn, event_id: str, n: int) -> int:
    """Reserve `n` sequence numbers for facts about the event; returns the first.
    Called with the event locked, so the numbers follow commit order."""
    last = await conn.fetchval(
        "UPDATE events SET last_sequence = last_sequence + $2 WHERE event_id = $1 RETURNING last_sequence", event_id, n
    )
    return int(last) - n + 1


_COUNTS = """
SELECT count(*) FILTER (WHERE status = 'registered') AS registered,
       count(*) FILTER (WHERE status = 'offered') AS offered,
       count(*) FILTER (WHERE status = 'waitlisted') AS waitlisted,
       count(*) FILTER (WHERE attended_at IS NOT NULL) AS attended
  FROM registrations WHERE event_id = $1
"""


async def counts(conn: Conn, event_id: str) -> dict[str, int]:
    row = await conn.fetchrow(_COUNTS, event_id)
    assert row is not None
    return {k: int(row[k]) for k in ("registered", "waitlisted", "offered", "attended")}


@dataclass(frozen=True)
class MemberState:
    seats: Seats
    mine: Registration | None
    erased: bool


_MEMBER_STATE = f"""
SELECT c.registered, c.offered, c.waitlisted,
       EXISTS (SELECT 1 FROM erased_members WHERE member_id = $2) AS erased,
       r.registration_id::text AS registration_id, r.event_id::text AS event_id, r.member_id::text AS member_id,
       r.status, r.arrival, r.offer_expires_at
  FROM ({_COUNTS}) c
  LEFT JOIN registrations r ON r.event_id = $1 AND r.member_id = $2
"""


async def member_state(conn: Conn, event: Event, member_id: str) -> MemberState:
    """The seats, her registration if any, and whether she was erased, in one round trip.

    A statement of its own after `lock_event` (and her member lock): in READ COMMITTED each
    statement sees what committed before it began, so what it reads includes every
    registration (and erasure) committed before the locks were granted; a count in the
    locking statement itself could be older than the lock.
    """
    row = await conn.fetchrow(_MEMBER_STATE, event.event_id, member_id)
    assert row is not None
    seats = Seats(event.capacity, int(row["registered"]), int(row["offered"]), int(row["waitlisted"]))
    mine = None
    if row["registration_id"] is not None:
        mine = Registration(**{k: row[k] for k in Registration.__dataclass_fields__})
    return MemberState(seats, mine, bool(row["erased"]))


async def seats(conn: Conn, event: Event) -> Seats:
    row = await conn.fetchrow(_COUNTS, event.event_id)
    assert row is not None
    return Seats(event.capacity, int(row["registered"]), int(row["offered"]), int(row["waitlisted"]))


async def first_waiting(conn: Conn, event_id: str, n: int) -> list[Registration]:
    rows = await conn.fetch(
        f"SELECT {_REGISTRATION_COLUMNS} FROM registrations WHERE event_id = $1 AND status = 'waitlisted'"
        " ORDER BY arrival LIMIT $2",
        event_id,
        n,
    )
    return [Registration(**dict(r)) for r in rows]


async def make_offers(conn: Conn, registration_ids: list[str], at: datetime, until: datetime) -> None:
    await conn.execute(
        "UPDATE registrations SET status = 'offered', offered_at = $2, offer_expires_at = $3"
        " WHERE registration_id = any($1::uuid[])",
        registration_ids,
        at,
        until,
    )


async def promote(conn: Conn, registration_ids: list[str]) -> None:
    await conn.execute(
        "UPDATE registrations SET status = 'registered' WHERE registration_id = any($1::uuid[])", registration_ids
    )


async def set_registered(conn: Conn, registration_id: str) -> None:
    await conn.execute("UPDATE registrations SET status = 'registered' WHERE registration_id = $1", registration_id)


async def end_registrations(conn: Conn, registration_ids: list[str], status: str, reason: str, at: datetime) -> None:
    """She left (cancelled), or her offer expired: for good, never offered again."""
    await conn.execute(
        "UPDATE registrations SET status = $2, end_reason = $3, ended_at = $4 WHERE registration_id = any($1::uuid[])",
        registration_ids,
        status,
        reason,
        at,
    )


async def events_with_expired_offers(conn: Conn, now: datetime) -> list[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT event_id::text FROM registrations WHERE status = 'offered' AND offer_expires_at <= $1", now
    )
    return [r[0] for r in rows]


async def expired_offers(conn: Conn, event_id: str, now: datetime) -> list[Registration]:
    rows = await conn.fetch(
        f"SELECT {_REGISTRATION_COLUMNS} FROM registrations WHERE event_id = $1 AND status = 'offered'"
        " AND offer_expires_at <= $2 ORDER BY arrival",
        event_id,
        now,
    )
    return [Registration(**dict(r)) for r in rows]


async def registrations_of_members(conn: Conn, member_ids: list[str]) -> list[Registration]:
    """Their registrations, by event id (the order erasure locks the events in)."""
    rows = await conn.fetch(
        f"SELECT {_REGISTRATION_COLUMNS} FROM registrations WHERE member_id = any($1::uuid[]) ORDER BY event_id",
        member_ids,
    )
    return [Registration(**dict(r)) for r in rows]


async def current_status(conn: Conn, registration_id: str) -> str:
    status = await conn.fetchval("SELECT status FROM registrations WHERE registration_id = $1", registration_id)
    return str(status)


async def forget_registration(conn: Conn, registration_id: str) -> None:
    """Erasure: her registration keeps its place in the counts and loses its link to her."""
    await conn.execute("UPDATE registrations SET member_id = NULL WHERE registration_id = $1", registration_id)


async def register_in_one(
    conn: Conn, event_id: str, member_id: str, registration_id: str, now: datetime, registered: str, waitlisted: str
) -> tuple[str, int | None]:
    """Her registration in one statement (migrations/0004_register.sql): the locks, the
    refusals, the seat decision, the insert and the fact it publishes. Sent outside a
    transaction, so it commits by itself and the event's lock is held only inside the server.
    Returns the outcome (registered, waitlisted, or why not) and her place on the list."""
    row = await conn.fetchrow(
        "SELECT outcome, waitlist_position FROM events_register($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7)",
        event_id,
        member_id,
        registration_id,
        now,
        registered,
        waitlisted,
        _MEMBER_LOCK_SPACE,
    )
    assert row is not None
    return str(row["outcome"]), row["waitlist_position"]


# Namespace of the per-member advisory locks (the kit's own locks use single-key 7_340_00x).
_MEMBER_LOCK_SPACE = 7_340_104


async def lock_members(conn: Conn, member_ids: list[str]) -> None:
    """Transaction-scoped locks on members, in id order: a registration and her erasure
    happen one after the other, never interleaved (see registrations.erase_members)."""
    await conn.execute(
        # unnest keeps the (sorted) array's order; equal hashes of two ids just share a lock.
        "SELECT pg_advisory_xact_lock($1, hashtext(m)) FROM unnest($2::text[]) AS m",
        _MEMBER_LOCK_SPACE,
        sorted(member_ids),
    )


async def remember_erased(conn: Conn, erased: list[tuple[str, datetime]]) -> None:
    await conn.executemany(
        "INSERT INTO erased_members (member_id, erased_at) VALUES ($1, $2) ON CONFLICT DO NOTHING", erased
    )


EXPORT_QUERIES = {
    # Her part of an access export (GDPR art. 15): her registrations and the events' titles.
    # Compared as text: the export route takes any 36 hex digits and dashes, not only UUIDs.
    "registrations": "SELECT r.registration_id, r.event_id, e.definition->>'title' AS title, e.starts_at,"
    " r.status, r.created_at, r.offered_at, r.offer_expires_at, r.ended_at, r.end_reason, r.attended_at"
    " FROM registrations r JOIN events e USING (event_id) WHERE r.member_id::text = $1 ORDER BY r.created_at",
}
