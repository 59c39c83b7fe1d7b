"""Capacity under concurrency, the waiting list in arrival order, and offers when seats free
(events service on the real broker and database)."""

from __future__ import annotations

import asyncio
from collections import Counter

import asyncpg
import httpx
import pytest

from tests.e2e.consent_helpers import started
from tests.e2e.events_helpers import (
    act,
    counts,
    facts,
    member_link,
    new_members,
    published_event,
    register_at_once,
    registrations,
)
from tests.stack import ServiceProcess, Stack

pytestmark = pytest.mark.real


@pytest.fixture
async def events(events_service: ServiceProcess) -> ServiceProcess:
    return await started(events_service)


async def test_500_at_once_for_100_seats_then_30_cancellations_offer_the_first_30(
    stack: Stack, topic_prefix: str, events: ServiceProcess, events_conn: asyncpg.Connection
) -> None:
    event_id = published_event(events, capacity=100)
    members = new_members(500)
    # 40 of them press the button twice at the same moment.
    answers = await register_at_once(events, event_id, members + members[:40])

    statuses = Counter(a.status_code for a in answers)
    assert statuses == {201: 500, 409: 40}, statuses
    placed = [a.json() for a in answers if a.status_code == 201]
    assert Counter(p["status"] for p in placed) == {"registered": 100, "waitlisted": 400}
    assert all(p["waitlist_position"] is None for p in placed if p["status"] == "registered")
    assert sorted(p["waitlist_position"] for p in placed if p["status"] == "waitlisted") == list(range(1, 401))

    rows = await registrations(events_conn, event_id)
    assert len(rows) == 500
    assert len({r["member_id"] for r in rows}) == 500  # nobody twice
    # In arrival order: the first 100 to arrive have the seats, the rest wait in the order they came.
    assert [r["status"] for r in rows] == ["registered"] * 100 + ["waitlisted"] * 400
    assert counts(events, event_id) == {"registered": 100, "waitlisted": 400, "offered": 0, "attended": 0}
    # Each answer's position is her place in the arrival order.
    position_of = {r["member_id"]: i + 1 for i, r in enumerate(rows[100:])}
    # Which of a double press got the 201 is up to the race, so only the placed answers count.
    by_member = {
        m: a for m, a in zip(members + members[:40], answers, strict=True) if a.status_code == 201
    }
    assert len(by_member) == 500
    for member_id, position in position_of.items():
        assert by_member[member_id].json()["waitlist_position"] == position

    # The fifth in line gives up her place: she must never get an offer.
    quitter = rows[104]["member_id"]
    assert act(events, event_id, quitter, "registrations/cancel").status_code == 200

    # 30 seat holders cancel at the same time.
    leaving = [r["member_id"] for r in rows[:30]]
    async with httpx.AsyncClient(timeout=60) as client:
        cancelled = await asyncio.gather(
            *(
                client.post(
                    f"{events.url}/events/{event_id}/registrations/cancel", json={"member_token": member_link(m)}
                )
                for m in leaving
            )
        )
    assert [c.status_code for c in cancelled] == [200] * 30

    rows = await registrations(events_conn, event_id)
    waiting_in_order = [r for r in rows[100:] if r["member_id"] != quitter]
    assert [r["status"] for r in waiting_in_order[:30]] == ["offered"] * 30
    assert {r["status"] for r in waiting_in_order[30:]} == {"waitlisted"}
    assert next(r for r in rows if r["member_id"] == quitter)["status"] == "cancelled"
    assert {r["status"] for r in rows[:30]} == {"cancelled"}
    assert counts(events, event_id) == {"registered": 70, "waitlisted": 369, "offered": 30, "attended": 0}

    # The facts on the broker: one per change, the event's sequence without gaps across topics.
    published = await facts(stack, topic_prefix, events_conn, "event-published", event_id)
    registered = await facts(stack, topic_prefix, events_conn, "event-registered", event_id)
    waitlisted = await facts(stack, topic_prefix, events_conn, "event-waitlisted", event_id)
    offers = await facts(stack, topic_prefix, events_conn, "event-offer-made", event_id)
    left = await facts(stack, topic_prefix, events_conn, "event-registration-cancelled", event_id)
    assert (len(published), len(registered), len(waitlisted), len(offers), len(left)) == (1, 100, 400, 30, 31)
    everything = published + registered + waitlisted + offers + left
    assert sorted(f["sequence"] for f in everything) == list(range(1, len(everything) + 1))
    for topic_facts in (registered, waitlisted, offers, left):  # in order within each topic's partition
        assert [f["sequence"] for f in topic_facts] == sorted(f["sequence"] for f in topic_facts)
    assert [o["data"]["member_id"] for o in offers] == [r["member_id"] for r in waiting_in_order[:30]]
    assert quitter not in {o["data"]["member_id"] for o in offers}
    assert [w["data"]["waitlist_position"] for w in waitlisted] == list(range(1, 401))
