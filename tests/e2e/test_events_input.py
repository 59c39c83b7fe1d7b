"""The events service's refusals: invalid definitions (422 naming the field), faculty scope
(403), registering twice (409), closed or cancelled events (410), forged or expired links,
each leaving nothing changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from tests.e2e.consent_helpers import staff_headers, started
from tests.e2e.events_helpers import (
    COMMS,
    act,
    counts,
    create_event,
    member_link,
    new_members,
    published_event,
    registrations,
)
from tests.events import event_definition
from tests.stack import ServiceProcess, eventually

pytestmark = pytest.mark.real


@pytest.fixture
async def events(events_service: ServiceProcess) -> ServiceProcess:
    return await started(events_service)


def post_event(events: ServiceProcess, who: dict[str, str] = COMMS, **fields: Any) -> httpx.Response:
    return httpx.post(f"{events.url}/events", json=event_definition(**fields), headers=who)


def fields_named(answer: httpx.Response) -> list[list[str | int]]:
    assert answer.status_code == 422, answer.text
    return [p["loc"] for p in answer.json()["detail"]]


async def test_invalid_definitions_are_refused_naming_the_field(
    events: ServiceProcess, events_conn: asyncpg.Connection
) -> None:
    start = datetime.now(UTC) + timedelta(days=30)
    before = (start - timedelta(hours=1)).isoformat()
    backwards = post_event(events, starts_at=start.isoformat(), ends_at=before, registration_deadline=None)
    assert fields_named(backwards) == [["body", "ends_at"]]
    assert fields_named(post_event(events, capacity=0)) == [["body", "capacity"]]
    after = (start + timedelta(minutes=5)).isoformat()
    ends = (start + timedelta(hours=2)).isoformat()
    assert fields_named(post_event(events, starts_at=start.isoformat(), ends_at=ends, registration_deadline=after)) == [
        ["body", "registration_deadline"]
    ]
    assert ["body", "kind"] in fields_named(post_event(events, kind="party"))
    assert ["body", "organiser"] in fields_named(post_event(events, organiser="NTNU"))
    assert ["body", "starts_at"] in fields_named(post_event(events, starts_at="18 March 2027"))
    # Text the database cannot hold is refused, not a 500.
    assert fields_named(post_event(events, title="Jule\x00bord")) == [["body", "title"]]
    assert await events_conn.fetchval("SELECT count(*) FROM events") == 0


async def test_staff_act_only_for_their_own_faculty(events: ServiceProcess) -> None:
    ak_hh = staff_headers("ak", "HH")
    assert post_event(events, ak_hh, organiser="TNM").status_code == 403
    assert post_event(events, ak_hh, organiser="USN").status_code == 403
    assert post_event(events, staff_headers("aab"), organiser="HH").status_code == 403
    assert httpx.post(f"{events.url}/events", json=event_definition()).status_code == 401
    own = create_event(events, ak_hh, organiser="HH")
    tnm = create_event(events, organiser="TNM")
    assert httpx.post(f"{events.url}/events/{tnm}/publish", headers=ak_hh).status_code == 403
    assert httpx.get(f"{events.url}/events/{tnm}", headers=ak_hh).status_code == 403
    assert httpx.post(f"{events.url}/events/{own}/publish", headers=ak_hh).status_code == 200
    assert httpx.post(f"{events.url}/events/{own}/publish", headers=ak_hh).status_code == 409
    shown = httpx.get(f"{events.url}/events/{own}", headers=staff_headers("at", "HH")).json()
    assert (shown["status"], shown["organiser"], shown["offer_hours"]) == ("published", "HH", 48)
    assert shown["counts"] == {"registered": 0, "waitlisted": 0, "offered": 0, "attended": 0}
    unknown = "00000000-0000-4000-8000-000000000000"
    assert httpx.get(f"{events.url}/events/{unknown}", headers=COMMS).status_code == 404


async def test_registrations_refused_change_nothing(events: ServiceProcess, events_conn: asyncpg.Connection) -> None:
    event_id = published_event(events, capacity=5)
    member = new_members(1)[0]
    assert act(events, event_id, member).status_code == 201
    assert act(events, event_id, member).status_code == 409  # twice

    url = f"{events.url}/events/{event_id}/registrations"
    other = new_members(1)[0]
    genuine = member_link(other)
    body, _, mac = genuine.partition(".")
    forged = f"{body}.{mac[:-2]}{'AA' if mac[-2:] != 'AA' else 'BB'}"
    assert httpx.post(url, json={"member_token": forged}).status_code == 401
    assert httpx.post(url, json={"member_token": member_link(other, purpose="login")}).status_code == 401
    expired = httpx.post(url, json={"member_token": member_link(other, ttl=-10)})
    assert expired.status_code == 410, expired.text
    assert httpx.post(url, json={}).status_code == 422

    draft = create_event(events)
    assert act(events, draft, other).status_code == 404
    assert httpx.post(f"{events.url}/events/{event_id}/cancel", headers=COMMS).status_code == 200
    cancelled = act(events, event_id, other)
    assert cancelled.status_code == 410
    assert "cancelled" in cancelled.json()["detail"]
    assert httpx.post(f"{events.url}/events/{event_id}/cancel", headers=COMMS).status_code == 409

    assert [r["member_id"] for r in await registrations(events_conn, event_id)] == [member]
    assert await events_conn.fetchval("SELECT count(*) FROM registrations WHERE event_id = $1", draft) == 0
    assert counts(events, event_id)["registered"] == 1


async def test_a_past_event_takes_no_registrations(events: ServiceProcess, events_conn: asyncpg.Connection) -> None:
    start = datetime.now(UTC) + timedelta(seconds=3)
    ends = (start + timedelta(hours=1)).isoformat()
    event_id = published_event(events, starts_at=start.isoformat(), ends_at=ends, registration_deadline=None)

    async def begun() -> bool:
        return datetime.now(UTC) > start

    await eventually(begun, what="the event to start")
    answer = act(events, event_id, new_members(1)[0])
    assert answer.status_code == 410
    assert "started" in answer.json()["detail"]
    assert await registrations(events_conn, event_id) == []
