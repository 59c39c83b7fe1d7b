"""Redeeming a code at the door, under the event's row lock: the first redemption marks
her attended and publishes `event-attended`; a repeat says when she was first checked in
and changes nothing (two doors scanning her at once are serialised by the lock)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from alumni_kit.db import Conn
from events import repository
from events.checkin import repository as seats
from events.checkin.codes import InvalidCodeError, verify
from events.facts import about_registration, publish
from events.registrations import RefusedError
from events.repository import Event, Registration


@dataclass(frozen=True)
class Redeemed:
    registration_id: str
    first: bool  # False: a repeat
    checked_in_at: datetime  # the first redemption's time


def claims_for(code: str, event_id: str, public_keys: Mapping[str, Ed25519PublicKey]) -> str:
    """The registration id of a genuine code of this event, else a refusal (no database needed)."""
    try:
        claims = verify(code, public_keys)
    except InvalidCodeError as exc:
        raise RefusedError(400, f"invalid check-in code: {exc}") from None
    if claims.event_id != event_id:
        raise RefusedError(409, "this code is for another event")
    return claims.registration_id


async def redeem(conn: Conn, event: Event, registration_id: str, staff: str, now: datetime) -> Redeemed:
    """`event` locked by the caller (repository.lock_event)."""
    if event.status == "cancelled":
        raise RefusedError(410, "the event is cancelled")
    found = await seats.seat(conn, registration_id)
    if found is None or found.event_id != event.event_id:
        raise RefusedError(404, "no such registration")
    if found.attended_at is not None:
        return Redeemed(registration_id, False, found.attended_at)
    if found.status in ("cancelled", "expired") or found.member_id is None:
        raise RefusedError(410, "the registration was cancelled: this code is no longer valid")
    if found.status != "registered":
        raise RefusedError(409, f"not a seat: the registration is {found.status}")
    if now >= event.ends_at:
        raise RefusedError(410, "the event is over")
    await seats.mark_attended(conn, registration_id, now, staff)
    r = Registration(found.registration_id, found.event_id, found.member_id, found.status, found.arrival, None)
    await publish(conn, event.event_id, [about_registration("event-attended", r, "attended", now)])
    return Redeemed(registration_id, True, now)


async def locked_event(conn: Conn, event_id: str) -> Event:
    event = await repository.lock_event(conn, event_id)
    if event is None or event.status == "draft":
        raise RefusedError(404, "no such event")
    return event
