"""Registration, the waiting list and offers: each flow runs in the caller's transaction
with the event's row locked (a registration runs as one statement that takes the same
locks inside PostgreSQL: see `register`).

Why a row lock (SELECT … FOR UPDATE on the event) and not an advisory lock: the event
row is what the capacity rule is about, so locking it cannot be forgotten by a path
that reads the event anyway; it is released at commit or rollback whatever happens
(no session lock left behind on a pooled connection); it shows in pg_locks as the
event's row; it also serialises the per-event counters (arrival order, fact sequence)
kept in that row; and it needs no mapping of a UUID onto a 64-bit advisory key, where
two events could collide. It serialises registrations per event only: other events,
and reads of this one, do not wait. Counts are read in a statement after the lock
(see repository.member_state), so they include everything committed before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from alumni_kit.db import Conn
from events import repository, rules
from events.facts import Fact, about_registration, envelope, publish
from events.repository import Event, Registration
from usn_schemas.ids import new_id


class RefusedError(Exception):
    """A request the rules refuse; the route answers `status` with `detail`."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass(frozen=True)
class Placed:
    status: str  # registered | waitlisted
    waitlist_position: int | None


async def _locked(conn: Conn, event_id: str) -> Event:
    event = await repository.lock_event(conn, event_id)
    if event is None or event.status == "draft":
        raise RefusedError(404, "no such event")
    return event


async def register(conn: Conn, event_id: str, member_id: str, now: datetime) -> Placed:
    """A seat if one is free and nobody waits, else the end of the waiting list; once per member.

    One statement, on a connection outside any transaction (it commits by itself): the
    function `events_register` (migrations/0004_register.sql) takes her member lock, then the
    event's row lock (erasure takes them in the same order: an erasure committed before is
    seen, one after finds this registration to unlink), applies rules.registration_refusal
    and rules.placement, inserts her and puts the fact in the outbox. Both possible facts are
    built here, before the lock; PostgreSQL gives the one it publishes its sequence number.
    """
    mine = Registration(new_id(), event_id, member_id, "registered", 0, None)
    registered = about_registration("event-registered", mine, "registered", now)
    waitlisted = about_registration("event-waitlisted", mine, "waitlisted", now, position=1)
    outcome, position = await repository.register_in_one(
        conn,
        event_id,
        member_id,
        mine.registration_id,
        now,
        envelope(registered, event_id, 0),
        envelope(waitlisted, event_id, 0),
    )
    if outcome == "registered":
        return Placed("registered", None)
    if outcome == "waitlisted":
        return Placed("waitlisted", position)
    raise _refusal(outcome)


def _refusal(outcome: str) -> RefusedError:
    if outcome.startswith("already:"):
        return RefusedError(409, _already(outcome.removeprefix("already:")))
    if outcome == "erased":
        return RefusedError(410, "this link is no longer valid")
    refusal = rules.REFUSALS[outcome]
    return RefusedError(refusal.status, refusal.detail)


def _already(status: str) -> str:
    return {
        "registered": "already registered",
        "waitlisted": "already on the waiting list",
        "offered": "already offered a seat: accept or decline the offer",
    }.get(status, "registration for this event is closed to her: she cancelled or let an offer expire")


async def _hers(conn: Conn, event: Event, member_id: str) -> Registration:
    mine = (await repository.member_state(conn, event, member_id)).mine
    if mine is None:
        raise RefusedError(404, "not registered for this event")
    return mine


async def cancel(conn: Conn, event_id: str, member_id: str, now: datetime) -> None:
    """She leaves: her seat, her place on the list or her offer; for good. A freed seat
    goes as an offer to the first on the list."""
    event = await _locked(conn, event_id)
    mine = await _hers(conn, event, member_id)
    if mine.status not in ("registered", "waitlisted", "offered"):
        raise RefusedError(409, "already cancelled")
    if now >= event.starts_at:
        raise RefusedError(410, "the event has started or is over")
    reason = "declined" if mine.status == "offered" else "member"
    await _leave(conn, event, mine, reason, now, member_id)


async def _leave(conn: Conn, event: Event, r: Registration, reason: str, now: datetime, member_id: str | None) -> None:
    await repository.end_registrations(conn, [r.registration_id], "cancelled", reason, now)
    left = about_registration("event-registration-cancelled", r, "cancelled", now, reason=reason, member_id=member_id)
    facts = [left]
    if r.status != "waitlisted":  # she held a seat
        facts += await offer_free_seats(conn, event, now)
    await publish(conn, event.event_id, facts)


async def decline(conn: Conn, event_id: str, member_id: str, now: datetime) -> None:
    event = await _locked(conn, event_id)
    mine = await _hers(conn, event, member_id)
    if mine.status != "offered":
        raise RefusedError(409, "no open offer to decline")
    await _leave(conn, event, mine, "declined", now, member_id)


async def accept(conn: Conn, event_id: str, member_id: str, now: datetime) -> None:
    event = await _locked(conn, event_id)
    mine = await _hers(conn, event, member_id)
    if mine.status != "offered":
        raise RefusedError(409, "no open offer to accept")
    assert mine.offer_expires_at is not None
    if now >= mine.offer_expires_at:
        raise RefusedError(410, "the offer has expired")
    if event.status == "cancelled":
        raise RefusedError(410, "the event is cancelled")
    await repository.set_registered(conn, mine.registration_id)
    await publish(conn, event_id, [about_registration("event-registered", mine, "registered", now, reason="offer")])


async def offer_free_seats(conn: Conn, event: Event, now: datetime) -> list[Fact]:
    """For every free seat the first on the list gets an offer, or the seat itself when the
    event promotes automatically; nothing once the deadline passed."""
    if event.status != "published":
        return []
    until = rules.offer_expiry(now, event.offer_hours, event.registration_deadline, event.starts_at)
    if until is None:
        return []
    due = rules.offers_due(await repository.seats(conn, event))
    if due == 0:
        return []
    first = await repository.first_waiting(conn, event.event_id, due)
    ids = [r.registration_id for r in first]
    if event.definition.promotion == "automatic":
        await repository.promote(conn, ids)
        return [about_registration("event-registered", r, "registered", now, reason="waitlist") for r in first]
    await repository.make_offers(conn, ids, now, until)
    return [about_registration("event-offer-made", r, "offered", now, offer_expires_at=until) for r in first]


async def expire_offers(conn: Conn, event_id: str, now: datetime) -> int:
    """Offers of the event past their time end (she is off the list for good) and their seats
    go to the next in line. Returns how many expired (0 when another replica was first)."""
    event = await repository.lock_event(conn, event_id)
    if event is None:
        return 0
    expired = await repository.expired_offers(conn, event_id, now)  # read again under the lock
    if not expired:
        return 0
    await repository.end_registrations(conn, [r.registration_id for r in expired], "expired", "expired", now)
    facts = [about_registration("event-offer-expired", r, "expired", now, reason="expired") for r in expired]
    await publish(conn, event_id, facts + await offer_free_seats(conn, event, now))
    return len(expired)


async def erase_members(conn: Conn, erased: list[tuple[str, datetime]], now: datetime) -> None:
    """Their registrations lose every link to them; a seat stays counted, a place on the list
    or an offer is given up (nobody could take it) and a held seat goes to the next in line.

    Locks: the members' (in id order) before any event's, then the events in id order,
    the same order a registration takes them, so neither two erasures nor an erasure and
    a registration can deadlock.
    """
    member_ids = sorted({m for m, _ in erased})
    await repository.lock_members(conn, member_ids)
    await repository.remember_erased(conn, erased)
    locked: dict[str, Event] = {}
    for r in await repository.registrations_of_members(conn, member_ids):
        if r.event_id not in locked:
            event = await repository.lock_event(conn, r.event_id)
            assert event is not None
            locked[r.event_id] = event
        # Read again under the event's lock: erasing another member may have offered her a seat.
        status = await repository.current_status(conn, r.registration_id)
        await repository.forget_registration(conn, r.registration_id)
        if status in ("waitlisted", "offered"):
            anonymous = Registration(r.registration_id, r.event_id, None, status, r.arrival, None)
            await _leave(conn, locked[r.event_id], anonymous, "erased", now, None)
