"""Offers from the waiting list: an offer that expires or is declined moves on to the next
in line, an accepted one is a seat, none is made after the deadline; erasure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from tests.e2e.consent_helpers import staff_headers, started
from tests.e2e.events_helpers import act, counts, facts, new_members, published_event, registrations
from tests.events import member_erased
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, publish

pytestmark = pytest.mark.real


@pytest.fixture
async def events(events_service: ServiceProcess) -> ServiceProcess:
    return await started(events_service)


def statuses(rows: list[asyncpg.Record]) -> list[str]:
    return [r["status"] for r in rows]


async def test_an_expired_offer_moves_on_a_declined_one_too_and_an_accepted_one_is_a_seat(
    stack: Stack, topic_prefix: str, events: ServiceProcess, events_conn: asyncpg.Connection
) -> None:
    # Offers hold for 0.002 hours (7.2 s): the real rule, on a time a test can wait for.
    event_id = published_event(events, capacity=1, offer_hours=0.002)
    holder, first, second, third = new_members(4)
    assert [act(events, event_id, m).json()["status"] for m in (holder, first, second, third)] == [
        "registered",
        "waitlisted",
        "waitlisted",
        "waitlisted",
    ]
    offered_at = datetime.now(UTC)
    assert act(events, event_id, holder, "registrations/cancel").status_code == 200
    rows = await registrations(events_conn, event_id)
    assert statuses(rows) == ["cancelled", "offered", "waitlisted", "waitlisted"]
    expires = rows[1]["offer_expires_at"]
    assert timedelta(seconds=6) < expires - offered_at < timedelta(seconds=9)

    # Nobody answers: the offer expires and goes to the second in line.
    async def moved_on() -> list[str] | None:
        now = statuses(await registrations(events_conn, event_id))
        return now if now[2] == "offered" else None

    assert await eventually(moved_on, timeout=30, what="the offer to move on") == [
        "cancelled",
        "expired",
        "offered",
        "waitlisted",
    ]
    assert datetime.now(UTC) >= expires
    late = act(events, event_id, first, "offer/accept")
    assert late.status_code == 409, late.text  # her offer is gone, and so is her place
    assert act(events, event_id, first).status_code == 409  # she cannot queue again

    # The second declines: the third gets the offer and accepts it.
    assert act(events, event_id, second, "offer/decline").status_code == 200
    assert statuses(await registrations(events_conn, event_id))[2:] == ["cancelled", "offered"]
    accepted = act(events, event_id, third, "offer/accept")
    assert accepted.status_code == 200, accepted.text
    assert counts(events, event_id) == {"registered": 1, "waitlisted": 0, "offered": 0, "attended": 0}
    assert act(events, event_id, third, "offer/accept").status_code == 409

    expired = await facts(stack, topic_prefix, events_conn, "event-offer-expired", event_id)
    assert [(f["data"]["member_id"], f["data"]["reason"]) for f in expired] == [(first, "expired")]
    offers = await facts(stack, topic_prefix, events_conn, "event-offer-made", event_id)
    assert [f["data"]["member_id"] for f in offers] == [first, second, third]
    left = await facts(stack, topic_prefix, events_conn, "event-registration-cancelled", event_id)
    assert [(f["data"]["member_id"], f["data"]["reason"]) for f in left] == [(holder, "member"), (second, "declined")]
    seats = await facts(stack, topic_prefix, events_conn, "event-registered", event_id)
    assert [(f["data"]["member_id"], f["data"].get("reason")) for f in seats] == [(holder, None), (third, "offer")]


async def test_no_offer_after_the_deadline(events: ServiceProcess, events_conn: asyncpg.Connection) -> None:
    deadline = datetime.now(UTC) + timedelta(seconds=3)
    event_id = published_event(events, capacity=1, registration_deadline=deadline.isoformat())
    holder, waiting = new_members(2)
    assert act(events, event_id, holder).json()["status"] == "registered"
    assert act(events, event_id, waiting).json() == {"status": "waitlisted", "waitlist_position": 1}

    async def past() -> bool:
        return datetime.now(UTC) > deadline

    await eventually(past, what="the deadline to pass")
    late = act(events, event_id, new_members(1)[0])
    assert late.status_code == 410, late.text
    assert "deadline" in late.json()["detail"]
    assert act(events, event_id, holder, "registrations/cancel").status_code == 200
    assert counts(events, event_id) == {"registered": 0, "waitlisted": 1, "offered": 0, "attended": 0}


async def test_an_erased_member_loses_every_link_and_her_offer_goes_on(
    stack: Stack, topic_prefix: str, events: ServiceProcess, events_conn: asyncpg.Connection
) -> None:
    event_id = published_event(events, capacity=2)
    seated, holder, offered, waiting = new_members(4)
    for m in (seated, holder, offered, waiting):
        assert act(events, event_id, m).status_code == 201
    assert act(events, event_id, holder, "registrations/cancel").status_code == 200
    assert statuses(await registrations(events_conn, event_id)) == ["registered", "cancelled", "offered", "waitlisted"]

    await publish(
        stack.bootstrap,
        topic_prefix + "member-erased",
        [event_bytes(member_erased(m)) for m in (seated, offered)],
    )

    async def erased() -> bool:
        n = await events_conn.fetchval(
            "SELECT count(*) FROM registrations WHERE member_id = any($1::uuid[])", [seated, offered]
        )
        return n == 0

    await eventually(erased, what="the erased members' registrations to lose their links")
    rows = await registrations(events_conn, event_id)
    assert [(r["member_id"], r["status"]) for r in rows] == [
        (None, "registered"),  # her seat stays counted
        (holder, "cancelled"),
        (None, "cancelled"),  # her offer is given up ...
        (waiting, "offered"),  # ... and goes to the next in line
    ]
    assert counts(events, event_id) == {"registered": 1, "waitlisted": 0, "offered": 1, "attended": 0}
    # A link issued before her erasure registers nobody.
    assert act(events, event_id, seated).status_code == 410
    left = await facts(stack, topic_prefix, events_conn, "event-registration-cancelled", event_id)
    assert [(f["data"].get("member_id"), f["data"]["reason"]) for f in left] == [(holder, "member"), (None, "erased")]


async def test_a_change_is_published_and_added_seats_go_to_the_list(
    stack: Stack, topic_prefix: str, events: ServiceProcess, events_conn: asyncpg.Connection
) -> None:
    event_id = published_event(events, organiser="HS", capacity=2)
    members = new_members(5)
    for m in members:
        assert act(events, event_id, m).status_code == 201
    url, ak = f"{events.url}/events/{event_id}", staff_headers("ak", "HS")

    too_small = httpx.patch(url, json={"capacity": 1}, headers=ak)
    assert too_small.status_code == 422
    assert [p["loc"] for p in too_small.json()["detail"]] == [["body", "capacity"]]
    backwards = httpx.patch(url, json={"ends_at": "2020-01-01T00:00:00Z"}, headers=ak)
    assert ["body", "ends_at"] in [p["loc"] for p in backwards.json()["detail"]]
    assert httpx.patch(url, json={"colour": "red"}, headers=ak).status_code == 422
    assert httpx.patch(url, json={"capacity": 4}, headers=staff_headers("ak", "HH")).status_code == 403
    assert httpx.patch(url, json={"organiser": "HH"}, headers=ak).status_code == 403

    grown = httpx.patch(url, json={"capacity": 4, "title": "Alumnikveld i Bø"}, headers=ak)
    assert grown.status_code == 200, grown.text
    assert statuses(await registrations(events_conn, event_id)) == ["registered"] * 2 + ["offered"] * 2 + ["waitlisted"]
    shown = httpx.get(url, headers=ak).json()
    assert (shown["capacity"], shown["title"]) == (4, "Alumnikveld i Bø")
    assert shown["counts"] == {"registered": 2, "waitlisted": 1, "offered": 2, "attended": 0}

    updated = await facts(stack, topic_prefix, events_conn, "event-updated", event_id)
    assert [(f["data"]["definition"]["capacity"], f["data"]["definition"]["title"]) for f in updated] == [
        (4, "Alumnikveld i Bø")
    ]
    offers = await facts(stack, topic_prefix, events_conn, "event-offer-made", event_id)
    assert [f["data"]["member_id"] for f in offers] == members[2:4]
    assert updated[0]["sequence"] < offers[0]["sequence"]


async def test_plain_automatic_promotion_gives_the_seat_at_once(
    stack: Stack, topic_prefix: str, events: ServiceProcess, events_conn: asyncpg.Connection
) -> None:
    event_id = published_event(events, capacity=1, promotion="automatic")
    holder, first, second = new_members(3)
    for m in (holder, first, second):
        assert act(events, event_id, m).status_code == 201
    assert act(events, event_id, holder, "registrations/cancel").status_code == 200
    assert statuses(await registrations(events_conn, event_id)) == ["cancelled", "registered", "waitlisted"]
    seats = await facts(stack, topic_prefix, events_conn, "event-registered", event_id)
    assert [(f["data"]["member_id"], f["data"].get("reason")) for f in seats] == [(holder, None), (first, "waitlist")]
    assert await facts(stack, topic_prefix, events_conn, "event-offer-made", event_id) == []
