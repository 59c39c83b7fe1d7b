"""Helpers for the analytics read-side tests: a small USN published through Kafka (members in
four faculties, two of them small, consent, a campaign with opens and clicks, an event with
attendance, volunteer offers, EVU enrolments), and a check that no output counts 1–4 people."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from tests import events as ev
from tests.e2e.consent_helpers import staff_headers
from tests.stack import ServiceProcess, Stack, event_bytes, eventually, publish

# Members per faculty: HS is a small cell (3), HIU goes with it (secondary suppression).
EARLY = {"HH": 20, "TNM": 9}  # published before the as_of moment
LATE = {"HS": 3, "HIU": 6}  # after it
CONSENTING = {"HH": 15, "TNM": 2, "HIU": 4}  # TNM's and HIU's are small cells (together 6)
SENT, OPENED, CLICKED = 12, 7, 3  # HH's newsletter; 3 clicks are suppressed (5 did not open)
REGISTERED, ATTENDED = 10, 5  # 5 registered who have not come yet
MENTORS, GUEST_LECTURERS = 6, 2
ENROLLED = 6  # HH members on an EVU course


@dataclass
class Seeded:
    as_of: datetime  # between the early and the late members
    members: dict[str, list[str]]  # faculty -> member ids
    campaign_id: str
    event_id: str


async def _send(stack: Stack, prefix: str, topic: str, facts: list[dict[str, Any]]) -> None:
    await publish(stack.bootstrap, prefix + topic, [event_bytes(f) for f in facts])


def _sn(member_id: str) -> str:
    return str(uuid.UUID(member_id).int)[:7]


async def seed(stack: Stack, prefix: str) -> Seeded:
    members: dict[str, list[str]] = {}

    async def register(sizes: dict[str, int]) -> None:
        facts = []
        for faculty, n in sizes.items():
            ids = [str(uuid.uuid4()) for _ in range(n)]
            members[faculty] = ids
            now = datetime.now(UTC).isoformat()
            facts += [ev.member_registered(m, faculty=faculty, time=now, student_number=_sn(m)) for m in ids]
        await _send(stack, prefix, "member-registered", facts)

    await register(EARLY)
    as_of = datetime.now(UTC)
    await register(LATE)
    hh = members["HH"]
    consent = [m for f, n in CONSENTING.items() for m in members[f][:n]]
    await _send(stack, prefix, "consent-given", [ev.consent_fact(m, 1, "given") for m in consent])
    campaign_id = f"c-{uuid.uuid4().hex[:8]}"
    await _send(stack, prefix, "campaigns", [ev.campaign(campaign_id, faculty="HH")])
    now = datetime.now(UTC).isoformat()
    await _send(
        stack, prefix, "campaign-status", [ev.campaign_status(campaign_id, "done", now, sent=SENT, faculty="HH")]
    )
    await _send(stack, prefix, "newsletter-sent", [ev.newsletter_sent(campaign_id, m, "HH", now) for m in hh[:SENT]])
    await _send(stack, prefix, "email-opened", [ev.email_engagement("opened", campaign_id, m) for m in hh[:OPENED]])
    await _send(stack, prefix, "email-clicked", [ev.email_engagement("clicked", campaign_id, m) for m in hh[:CLICKED]])
    event_id = str(uuid.uuid4())
    await _send(stack, prefix, "event-published", [ev.event_fact(event_id, "published", 1, organiser="HH")])
    registrations = [str(uuid.uuid4()) for _ in range(REGISTERED)]
    await _send(
        stack,
        prefix,
        "event-registered",
        [ev.registration_fact(event_id, r, hh[i], "registered", 2 + i) for i, r in enumerate(registrations)],
    )
    await _send(
        stack,
        prefix,
        "event-attended",
        [ev.registration_fact(event_id, r, hh[i], "attended", 20 + i) for i, r in enumerate(registrations[:ATTENDED])],
    )
    offers = []
    for i, m in enumerate(hh[:MENTORS]):
        offers.append(ev.volunteer_fact(m, 1 + i, "mentor"))
        offers[-1]["data"]["faculties"] = ["HH"]
    for i, m in enumerate(members["TNM"][:GUEST_LECTURERS]):
        offers.append(ev.volunteer_fact(m, 1 + i, "guest-lecture"))
    await _send(stack, prefix, "volunteer-offered", offers)
    await _send(stack, prefix, "evu-enrolled", [ev.evu_enrolled(str(uuid.uuid4()), _sn(m)) for m in hh[:ENROLLED]])
    return Seeded(as_of, members, campaign_id, event_id)


async def caught_up(service: ServiceProcess) -> None:
    """Until the live projections hold every seeded fact (read through the API, as comms)."""
    headers = staff_headers("comms")
    seen: dict[str, Any] = {}

    async def done() -> bool:
        async with httpx.AsyncClient(base_url=service.url, headers=headers, timeout=10) as client:
            members = (await client.get("/analytics/members")).json()
            evu = (await client.get("/analytics/evu")).json()
            campaigns = (await client.get("/analytics/campaigns")).json()["campaigns"]
            events = (await client.get("/analytics/events")).json()["events"]
            offers = (await client.get("/analytics/volunteering")).json()
            reach = (await client.get("/analytics/reach")).json()["reach"]
        seen.update(members=members, evu=evu, campaigns=campaigns, events=events, offers=offers, reach=reach)
        return (
            members["total"] == sum(EARLY.values()) + sum(LATE.values())
            and evu["enrolled"] == ENROLLED
            and bool(campaigns)
            and campaigns[0]["opened"] == OPENED
            and campaigns[0]["sent"] == SENT
            and bool(events)
            and events[0]["attended"] == ATTENDED
            and offers["total"] == MENTORS + GUEST_LECTURERS
            and bool(reach)
        )

    try:
        await eventually(done, timeout=60, what="the projections to hold every seeded fact")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the answers: {seen}") from None


# Counts of events, not of people (views.py shows them as they are).
NOT_PEOPLE = ("published", "cancelled_events")


def small_counts_in_json(data: Any, path: str = "") -> list[str]:
    """Paths of integers 1–4 anywhere in an answer (a share or a weight is a float, not a count)."""
    if isinstance(data, dict):
        if data.get("kind") == "number":  # a chart's series of events held
            return []
        return [p for k, v in data.items() if k not in NOT_PEOPLE for p in small_counts_in_json(v, f"{path}.{k}")]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in small_counts_in_json(v, f"{path}[{i}]")]
    if isinstance(data, int) and not isinstance(data, bool) and 0 < data < 5:
        return [f"{path} = {data}"]
    return []


def small_counts_in_csv(text: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["figure", "value"]
    return [
        f"{name} = {value}"
        for name, value in rows[1:]
        if value.isdigit() and 0 < int(value) < 5 and name.rpartition(".")[2] not in NOT_PEOPLE
    ]


def read_routes(openapi: dict[str, Any]) -> list[str]:
    """Every GET route of the read API and its CSV (the dashboard's own pages aside)."""
    return [
        p
        for p, ops in openapi["paths"].items()
        if p.startswith("/analytics/") and "get" in ops and "/dashboard" not in p and "/static/" not in p
    ]
