"""An event's life: created (a draft), published, cancelled; each change a fact in the outbox."""

from __future__ import annotations

from datetime import datetime

from alumni_kit.db import Conn
from events import repository, rules
from events.facts import about_event, publish
from events.registrations import RefusedError, offer_free_seats
from events.repository import Event
from events.rules import FieldProblem
from usn_schemas.events import EventDefinition
from usn_schemas.ids import new_id


async def create(conn: Conn, definition: EventDefinition, created_by: str) -> str:
    """A draft: nothing is published and nobody can register until it is published."""
    event_id = new_id()
    await repository.create_event(conn, event_id, definition, rules.deadline_of(definition), created_by)
    return event_id


async def publish_event(conn: Conn, event_id: str, now: datetime) -> None:
    event = await repository.lock_event(conn, event_id)
    if event is None:
        raise RefusedError(404, "no such event")
    if event.status != "draft":
        raise RefusedError(409, f"the event is already {event.status}")
    if now >= event.registration_deadline:
        raise RefusedError(409, "the registration deadline has passed; change the event first")
    await repository.set_event_status(conn, event_id, "published", now)
    await publish(conn, event_id, [about_event("event-published", event, "published", now)])


async def cancel_event(conn: Conn, event_id: str, now: datetime) -> None:
    """Nobody can register any more; registrations are kept (and counted) as they were."""
    event = await repository.lock_event(conn, event_id)
    if event is None:
        raise RefusedError(404, "no such event")
    if event.status == "cancelled":
        raise RefusedError(409, "the event is already cancelled")
    await repository.set_event_status(conn, event_id, "cancelled", now)
    await publish(conn, event_id, [about_event("event-cancelled", event, "cancelled", now)])


class InvalidChangeError(Exception):
    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(p.msg for p in problems))
        self.problems = problems


async def change_event(conn: Conn, event: Event, definition: EventDefinition, now: datetime) -> None:
    """A new definition (locked by the caller). A published event's change is published
    (`event-updated`), and seats it adds go as offers to the first on the list."""
    problems = rules.problems_of(definition, now)
    problems += rules.change_problems(await repository.seats(conn, event), definition.capacity)
    if problems:
        raise InvalidChangeError(problems)
    await repository.update_event(conn, event.event_id, definition, rules.deadline_of(definition))
    if event.status != "published":
        return
    changed = await repository.lock_event(conn, event.event_id)  # as it now stands
    assert changed is not None
    facts = [about_event("event-updated", changed, "published", now)]
    await publish(conn, event.event_id, facts + await offer_free_seats(conn, changed, now))
