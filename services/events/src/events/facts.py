"""The facts the events service publishes, as outbox messages (key = event id).

Each fact gets the next number of its event's sequence (`repository.next_sequences`,
taken under the event's row lock), so consumers can order one event's facts across topics.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from alumni_kit.db import Conn
from alumni_kit.outbox import OutboxMessage, add_to_outbox
from events import repository
from events.repository import Event, Registration
from usn_schemas.envelope import CloudEvent
from usn_schemas.events import (
    EventAttendedV1,
    EventCancelledV1,
    EventFact,
    EventOfferExpiredV1,
    EventOfferMadeV1,
    EventPublishedV1,
    EventRegisteredV1,
    EventRegistrationCancelledV1,
    EventStatus,
    EventUpdatedV1,
    EventWaitlistedV1,
    RegistrationFact,
    RegistrationStatus,
)

SOURCE = "/usn-alumni/events"

# Topic and contract of each kind of fact.
TOPICS: dict[str, type[CloudEvent]] = {
    "event-published": EventPublishedV1,
    "event-updated": EventUpdatedV1,
    "event-cancelled": EventCancelledV1,
    "event-registered": EventRegisteredV1,
    "event-waitlisted": EventWaitlistedV1,
    "event-offer-made": EventOfferMadeV1,
    "event-offer-expired": EventOfferExpiredV1,
    "event-registration-cancelled": EventRegistrationCancelledV1,
    "event-attended": EventAttendedV1,
}


@dataclass(frozen=True)
class Fact:
    topic: str
    data: EventFact | RegistrationFact


def about_event(topic: str, event: Event, status: EventStatus, at: datetime) -> Fact:
    return Fact(topic, EventFact(event_id=event.event_id, status=status, definition=event.definition, at=at))


def about_registration(
    topic: str,
    r: Registration,
    status: RegistrationStatus,
    at: datetime,
    *,
    member_id: str | None = None,
    position: int | None = None,
    offer_expires_at: datetime | None = None,
    reason: str | None = None,
) -> Fact:
    data = RegistrationFact(
        event_id=r.event_id,
        registration_id=r.registration_id,
        member_id=member_id if member_id is not None else r.member_id,
        status=status,
        waitlist_position=position,
        offer_expires_at=offer_expires_at,
        reason=reason,
        at=at,
    )
    return Fact(topic, data)


def envelope(fact: Fact, event_id: str, sequence: int) -> str:
    """The fact as the outbox row's JSON value, for a caller that writes the row itself
    (repository.register_in_one, where PostgreSQL sets the sequence)."""
    event = TOPICS[fact.topic].create(
        subject=event_id, data=fact.data, source=SOURCE, sequence=sequence, time=fact.data.at
    )
    return event.to_json().decode()


async def publish(conn: Conn, event_id: str, facts: list[Fact]) -> None:
    """The facts into the outbox, in the caller's transaction (the event's row locked)."""
    if not facts:
        return
    first = await repository.next_sequences(conn, event_id, len(facts))
    messages = [
        OutboxMessage(
            f.topic,
            event_id,
            TOPICS[f.topic].create(subject=event_id, data=f.data, source=SOURCE, sequence=first + i, time=f.data.at),
        )
        for i, f in enumerate(facts)
    ]
    await add_to_outbox(conn, messages)
