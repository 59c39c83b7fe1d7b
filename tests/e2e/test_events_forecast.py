"""The minimum-turnout forecast: an event that lags its peers is forecast below its minimum
(the alert metric counts it, the staff view shows the figures, the organiser's role address
gets one mail with the figures at the SMTP server, and another only when they worsen
materially) and one that keeps pace is not; the organiser then confirms or cancels, and a
cancellation is the event's own (`event-cancelled`).

The peers are earlier events of the same kind and faculty. Past events cannot be created
through the API (a definition must start in the future), so their history is arranged in
the database here: events whose decision date has passed and registrations with the times
they arrived at. The events forecast are created, published and registered for through the API.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from tests.e2e.consent_helpers import staff_headers, started
from tests.e2e.events_helpers import act, create_event, facts, new_members
from tests.events import event_definition
from tests.smtp import SmtpSink
from tests.stack import ServiceProcess, Stack, eventually

pytestmark = pytest.mark.real

ORGANISER, KIND = "HIU", "career"
CONTACT = "hiu-karriere@usn.no"  # the lagging event's organiser_contact (a role address)
AK = staff_headers("ak", ORGANISER, ttl=6 * 3600)  # made at import: outlasts a long session


@pytest.fixture
async def events(events_service: ServiceProcess) -> ServiceProcess:
    events_service.env["EVENTS_FORECAST_SECONDS"] = "1"  # the periodic job, on a time a test can wait for
    return await started(events_service)


async def arrange_peer(
    conn: asyncpg.Connection, days_ago: int, early: int, late: int, kind: str = KIND, status: str = "published"
) -> None:
    """A past event whose decision was `days_ago`: `early` registrations 20 days before its
    decision, `late` ones 2 days before (so 10 days before it had early / (early + late))."""
    decided = datetime.now(UTC) - timedelta(days=days_ago)
    starts = decided + timedelta(days=3)
    body = event_definition(ORGANISER, capacity=200, kind=kind, hours_ahead=0)
    body |= {
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "registration_deadline": starts.isoformat(),
        "minimum": {"registrations": 20, "decide_by": decided.isoformat()},
    }
    event_id = str(uuid.uuid4())
    await conn.execute(
        "INSERT INTO events (event_id, organiser, definition, starts_at, ends_at, registration_deadline, capacity,"
        " offer_hours, status, created_by, created_at, published_at)"
        " VALUES ($1, $2, $3::jsonb, $4::timestamptz, $4::timestamptz + interval '2 hours', $4::timestamptz, 200,"
        " 48, $5, 'arranged', $6, $6)",
        event_id,
        ORGANISER,
        json.dumps(body),
        starts,
        status,
        decided - timedelta(days=40),
    )
    times = [decided - timedelta(days=20)] * early + [decided - timedelta(days=2)] * late
    await conn.executemany(
        "INSERT INTO registrations (registration_id, event_id, member_id, status, arrival, created_at)"
        " VALUES ($1, $2, $3, 'registered', $4, $5)",
        [(str(uuid.uuid4()), event_id, str(uuid.uuid4()), i + 1, t) for i, t in enumerate(times)],
    )


def published(events: ServiceProcess, **fields: object) -> str:
    """An event of the faculty's, created and published by its AK."""
    event_id = create_event(events, AK, organiser=ORGANISER, kind=KIND, **fields)
    assert httpx.post(f"{events.url}/events/{event_id}/publish", headers=AK).status_code == 200
    return event_id


def gauge(events: ServiceProcess, name: str) -> float:
    text = httpx.get(f"{events.url}/metrics").text
    found = re.search(rf'^{name}\{{[^}}]*organiser="{ORGANISER}"[^}}]*\}} (\S+)$', text, re.M)
    assert found, f"{name} for {ORGANISER} not in /metrics"
    return float(found.group(1))


async def alert_mails(sink: SmtpSink, n: int) -> list[str]:
    """The plain text of the turnout alerts at the SMTP server, once there are `n`."""

    async def arrived() -> list[str] | None:
        found = [m for m in sink.messages() if str(m.parsed["Subject"]).startswith("Få påmeldte:")]
        if len(found) < n:
            return None
        return [str(b.get_content()) for m in found if (b := m.parsed.get_body(("plain",)))]

    found: list[str] = await eventually(arrived, timeout=60, what=f"{n} turnout alerts at the SMTP server")
    return found


async def test_a_lagging_event_alerts_one_keeping_pace_does_not_and_the_organiser_decides(
    stack: Stack,
    topic_prefix: str,
    events: ServiceProcess,
    events_conn: asyncpg.Connection,
    mailer_service: ServiceProcess,
    smtp_sink: SmtpSink,
) -> None:
    await started(mailer_service)
    # Three peers had 80 % of their final count ten days before their decision; two events that
    # are no peers would pull the median down if they were counted (another kind; cancelled).
    for days_ago in (30, 60, 90):
        await arrange_peer(events_conn, days_ago, early=40, late=10)
    await arrange_peer(events_conn, 45, early=1, late=49, kind="social")
    await arrange_peer(events_conn, 50, early=1, late=49, status="cancelled")

    decide_by = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    minimum = {"registrations": 30, "decide_by": decide_by}
    lagging, pacing, plain = published(events, minimum=minimum), published(events, minimum=minimum), published(events)
    lagging_members = new_members(8)
    for event_id, members in ((lagging, lagging_members), (pacing, new_members(28))):
        assert all(act(events, event_id, m).status_code == 201 for m in members)
    # On publishing day nothing alarms, however far behind its peers it looks (rules.MIN_HISTORY) ...
    fresh = httpx.post(f"{events.url}/events/{lagging}/forecast", headers=AK)
    assert fresh.status_code == 200, fresh.text
    assert (fresh.json()["method"], fresh.json()["expected"], fresh.json()["below_minimum"]) == ("too-early", 8, False)
    # ... so both were published two days ago, as far as the forecast can tell.
    await events_conn.execute(
        "UPDATE events SET published_at = published_at - interval '2 days' WHERE event_id = any($1::uuid[])",
        [lagging, pacing],
    )

    # The periodic job forecasts them by itself (every second here, hourly by default) ...
    async def forecast_by_the_job() -> bool:
        rows = await events_conn.fetch(
            "SELECT event_id::text, registrations, method FROM forecasts WHERE event_id = any($1::uuid[])",
            [lagging, pacing],
        )
        return {r["event_id"]: (r["registrations"], r["method"]) for r in rows} == {
            lagging: (8, "peers"),
            pacing: (28, "peers"),
        }

    await eventually(forecast_by_the_job, timeout=30, what="the periodic forecast of every registration")
    # ... and staff can run it now.
    ran = httpx.post(f"{events.url}/events/{lagging}/forecast", headers=AK)
    assert ran.status_code == 200, ran.text

    def forecast_of(event_id: str) -> dict[str, object]:
        answer = httpx.get(f"{events.url}/events/{event_id}", headers=AK)
        assert answer.status_code == 200, answer.text
        assert set(answer.json()["counts"]) == {"registered", "waitlisted", "offered", "attended"}
        return dict(answer.json()["forecast"] or {})

    behind = forecast_of(lagging)
    assert behind | {"computed_at": None, "decide_by": None} == {
        "minimum": 30,
        "decide_by": None,
        "computed_at": None,
        "registrations": 8,
        "expected": 10,  # 8 / 0.8
        "method": "peers",
        "peers": 3,
        "peer_fraction": 0.8,
        "below_minimum": True,
        "decision": None,
    }
    ahead = forecast_of(pacing)
    assert (ahead["registrations"], ahead["expected"], ahead["below_minimum"]) == (28, 35, False)
    assert forecast_of(plain) == {}  # no minimum, no forecast
    assert gauge(events, "events_forecast_below_minimum") == 1  # the lagging one only
    assert "turnout forecast below the minimum: event " + lagging in events.log_path.read_text()

    # With a role address to write to (given once the registrations are in, so the figures
    # are known here; without one there is no mail), the organiser is mailed the figures once:
    # the job's forecasts every second and one more run now do not mail the same crossing again.
    change = httpx.patch(f"{events.url}/events/{lagging}", json={"organiser_contact": CONTACT}, headers=AK)
    assert change.status_code == 200, change.text
    [alert] = await alert_mails(smtp_sink, 1)
    [message] = [m for m in smtp_sink.messages() if str(m.parsed["Subject"]).startswith("Få påmeldte:")]
    assert message.recipients == (CONTACT,)
    for figure in ("forventet antall påmeldte innen beslutningsdatoen: 10", "minimum: 30", "påmeldte nå: 8",
                   "sammenlignbare arrangementer: 3", "registrations so far: 8", lagging):  # fmt: skip
        assert figure in alert.lower(), figure
    assert httpx.post(f"{events.url}/events/{lagging}/forecast", headers=AK).status_code == 200
    assert await events_conn.fetchval("SELECT mails FROM turnout_alerts WHERE event_id = $1", lagging) == 1
    # Two leave: 6 now, 7 expected, 3 fewer than mailed (the material drop for a minimum of 30): told again.
    for member in lagging_members[:2]:
        assert act(events, lagging, member, "registrations/cancel").status_code == 200
    assert httpx.post(f"{events.url}/events/{lagging}/forecast", headers=AK).status_code == 200
    _, second = await alert_mails(smtp_sink, 2)
    assert "påmeldte nå: 6" in second.lower()
    assert "beslutningsdatoen: 7" in second.lower()
    assert await events_conn.fetchval("SELECT mails FROM turnout_alerts WHERE event_id = $1", lagging) == 2

    # The organiser decides: another faculty's AK may not, a comms officer cancels the lagging one.
    assert (
        httpx.post(
            f"{events.url}/events/{lagging}/decision", json={"decision": "cancel"}, headers=staff_headers("ak", "HS")
        ).status_code
        == 403
    )
    bad = httpx.post(f"{events.url}/events/{lagging}/decision", json={"decision": "maybe"}, headers=AK)
    assert bad.status_code == 422, bad.text
    cancelled = httpx.post(f"{events.url}/events/{lagging}/decision", json={"decision": "cancel"}, headers=AK)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json() == {"event_id": lagging, "decision": "cancelled", "registrations": 6}
    again = httpx.post(f"{events.url}/events/{lagging}/decision", json={"decision": "confirm"}, headers=AK)
    assert again.status_code == 409, again.text
    confirmed = httpx.post(f"{events.url}/events/{pacing}/decision", json={"decision": "confirm"}, headers=AK)
    assert confirmed.status_code == 200, confirmed.text
    assert (
        httpx.post(f"{events.url}/events/{plain}/decision", json={"decision": "confirm"}, headers=AK).status_code == 409
    )

    shown = httpx.get(f"{events.url}/events/{lagging}", headers=AK).json()
    assert shown["status"] == "cancelled"
    assert shown["forecast"]["decision"]["decision"] == "cancelled"
    assert act(events, lagging, new_members(1)[0]).status_code == 410  # registration closed with it
    cancellations = await facts(stack, topic_prefix, events_conn, "event-cancelled", lagging)
    assert [f["data"]["status"] for f in cancellations] == ["cancelled"]
    assert gauge(events, "events_forecast_below_minimum") == 0  # decided: the alert resolves
