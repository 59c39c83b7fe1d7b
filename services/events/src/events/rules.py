"""Pure rules of events: what a valid definition is, who gets a seat, when an offer ends.

No I/O here: the repository calls these under the event's row lock, and the unit
tests (tests/unit/test_events_rules.py) call them with plain values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from usn_schemas.events import EventDefinition


@dataclass(frozen=True)
class FieldProblem:
    field: str
    msg: str


def problems_of(definition: EventDefinition, now: datetime) -> list[FieldProblem]:
    """Every rule the definition breaks beyond its fields' own, each naming its field (empty: valid)."""
    d, found = definition, []
    if d.capacity < 1:
        found.append(FieldProblem("capacity", "capacity must be at least 1"))
    if d.ends_at <= d.starts_at:
        found.append(FieldProblem("ends_at", "the event must end after it starts"))
    if d.starts_at <= now:
        found.append(FieldProblem("starts_at", "the event must start in the future"))
    if d.registration_deadline is not None and d.registration_deadline > d.starts_at:
        found.append(FieldProblem("registration_deadline", "the registration deadline must not be after the start"))
    if d.minimum is not None:
        if d.minimum.decide_by > d.starts_at:
            found.append(FieldProblem("minimum.decide_by", "the decision date must not be after the start"))
        if d.minimum.registrations > d.capacity:
            found.append(FieldProblem("minimum.registrations", "the minimum must not exceed the capacity"))
    if d.address is None and d.online_url is None:
        found.append(FieldProblem("address", "give an address or an online_url (or both)"))
    return found


def change_problems(seats: Seats, new_capacity: int) -> list[FieldProblem]:
    """What a change of a published event may not do: take seats from those who have them."""
    taken = seats.registered + seats.offered
    if new_capacity < taken:
        return [FieldProblem("capacity", f"{taken} seats are taken or offered; the capacity cannot go below that")]
    return []


def deadline_of(definition: EventDefinition) -> datetime:
    """Registration closes at the deadline, or at the start when none is given."""
    return definition.registration_deadline or definition.starts_at


@dataclass(frozen=True)
class Seats:
    """An event's seats as its registrations stand (read under the event's row lock)."""

    capacity: int
    registered: int
    offered: int
    waitlisted: int

    @property
    def free(self) -> int:
        # An offer holds its seat until it is accepted, declined or expires.
        return max(self.capacity - self.registered - self.offered, 0)


def placement(seats: Seats) -> Literal["registered", "waitlisted"]:
    """A new registration gets a free seat only if nobody waits: the list goes first."""
    return "registered" if seats.free > 0 and seats.waitlisted == 0 else "waitlisted"


@dataclass(frozen=True)
class Refusal:
    status: int
    detail: str


# Each refusal by name: what registration_refusal answers, and what the SQL function that
# registers in one statement (migrations/0004_register.sql, which applies the same rule) returns.
REFUSALS = {
    "no-event": Refusal(404, "no such event"),
    "cancelled": Refusal(410, "the event is cancelled"),
    "started": Refusal(410, "the event has started or is over"),
    "closed": Refusal(410, "registration closed at the deadline"),
}


def registration_refusal(event_status: str, deadline: datetime, starts_at: datetime, now: datetime) -> Refusal | None:
    """Why a member may not register now (None: she may)."""
    if event_status == "draft":
        return REFUSALS["no-event"]
    if event_status == "cancelled":
        return REFUSALS["cancelled"]
    if now >= starts_at:
        return REFUSALS["started"]
    if now >= deadline:
        return REFUSALS["closed"]
    return None


def offer_expiry(now: datetime, offer_hours: float, deadline: datetime, starts_at: datetime) -> datetime | None:
    """Until when an offer made now holds its seat: `offer_hours`, but never past the
    deadline or the start. None: too late for an offer (no offer after the deadline)."""
    until = min(now + timedelta(hours=offer_hours), deadline, starts_at)
    return until if until > now else None


def offers_due(seats: Seats) -> int:
    """How many of the first on the waiting list get an offer now."""
    return min(seats.free, seats.waitlisted)
