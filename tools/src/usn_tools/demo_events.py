"""`python -m usn_tools.demo_events`: a handful of demo events, loaded idempotently.

Upcoming events of several kinds and faculties (one with a minimum that lags its peers,
one full with a waiting list, one without a minimum) and the past events the forecast
compares with. Every id is fixed (UUID v5 of a name), so running it again changes nothing.

How they get in:
- the **upcoming** events are written as drafts with their fixed ids (the API gives new ids,
  which could not be recognised on a second run), then **published through the API**
  (`POST /events/{id}/publish`: the service publishes `event-published` as for any
  event), and demo members register **through the API** with their signed links
  (a repeat is a 409, which is what a second run gets);
- the **past** events (the forecast's peers: same kind and faculty, decided weeks ago)
  are history from before the platform: past events cannot be created through the API,
  so they and their registrations are written to the events database as they stood.
The upcoming events are then dated as announced four days ago (the forecast trusts no
curve on publishing day), the forecast runs (`POST /events/forecast/run`) and the lagging
event's forecast is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from alumni_kit.auth import TokenSigner, issue_member_link, issue_staff_token, parse_keys
from alumni_kit.settings import ServiceSettings
from usn_schemas.events import EventDefinition

_NAMESPACE = uuid.UUID("6f1d3c1e-4c7b-5b8e-9a53-2d1e0f0a0e12")
DAY = timedelta(days=1)


def fixed_id(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, name))


@dataclass(frozen=True)
class Demo:
    key: str
    title: str
    organiser: str
    kind: str
    campus: str
    days_ahead: int
    capacity: int
    registrations: int  # demo members who register
    minimum: tuple[int, int] | None = None  # (registrations, days until the decision)
    online: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


UPCOMING = (
    # Lags its peers (below): 6 now where they had 80 % of their final ten days before.
    Demo("hh-seminar", "Alumniseminar: Helse i endring", "HH", "seminar", "Drammen", 14, 80, 6, (30, 10)),
    Demo("usn-conference", "USN Alumnikonferansen 2027", "USN", "conference", "Bø", 40, 300, 12, (50, 30)),
    Demo("tnm-career", "Karrieredag for teknologi og maritime fag", "TNM", "career", "Kongsberg", 21, 200, 25),
    # Full: ten seats, fifteen register, five wait (five: the dashboard shows no smaller count).
    Demo("hs-social", "Alumnitreff i Bø: quiz og mingling", "HS", "social", "Bø", 9, 10, 15),
    Demo("hiu-webinar", "Webinar: Videreutdanning for lærere", "HIU", "evu-info", "Nettbasert", 7, 500, 6, online=True),
)
ANNOUNCED_DAYS_AGO = 4
# The lagging seminar's peers: HH seminars decided 30, 60 and 90 days ago, each 40
# registrations 20 days before its decision and 10 more in its last two days.
PEERS = ((30, "Alumniseminar: Folkehelse"), (60, "Alumniseminar: Sykepleie i kommunen"), (90, "Alumniseminar: Omsorg"))
PEER_EARLY, PEER_LATE = 40, 10


def definition(d: Demo, starts: datetime, decide_by: datetime | None) -> EventDefinition:
    body: dict[str, Any] = {
        "title": d.title,
        "description": "Demo-arrangement for USN Alumni.",
        "organiser": d.organiser,
        "kind": d.kind,
        "campus": d.campus,
        "starts_at": starts,
        "ends_at": starts + timedelta(hours=3),
        "capacity": d.capacity,
        "registration_deadline": starts - DAY,
        "audience": {"faculties": [d.organiser]} if d.organiser != "USN" else {},
        **d.extra,
    }
    if d.online:
        body["online_url"] = "https://usn.zoom.us/j/000000000"
    else:
        body["address"] = f"Campus {d.campus}"
    if d.minimum is not None and decide_by is not None:
        body["minimum"] = {"registrations": d.minimum[0], "decide_by": decide_by}
    return EventDefinition.model_validate(body)


_INSERT_EVENT = """
INSERT INTO events (event_id, organiser, definition, starts_at, ends_at, registration_deadline, capacity,
                    offer_hours, status, created_by, created_at, published_at)
VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8, $9, 'demo', $10, $11)
ON CONFLICT (event_id) DO NOTHING
"""


async def insert_event(conn: asyncpg.Connection, event_id: str, d: EventDefinition, status: str, at: datetime) -> bool:
    deadline = d.registration_deadline or d.starts_at
    published = at if status == "published" else None
    done = await conn.execute(
        _INSERT_EVENT, event_id, d.organiser, d.model_dump_json(), d.starts_at, d.ends_at, deadline, d.capacity,
        d.offer_hours, status, at, published,
    )  # fmt: skip
    return bool(done == "INSERT 0 1")


async def insert_peers(conn: asyncpg.Connection, members: list[str], now: datetime) -> None:
    """The past HH seminars (the forecast's peers) and their registrations, as they stood."""
    for days_ago, title in PEERS:
        decided = now - timedelta(days=days_ago)
        peer = Demo(f"peer-{days_ago}", title, "HH", "seminar", "Drammen", 0, 80, 0, (20, 0))
        event_id = fixed_id(peer.key)
        d = definition(peer, decided + 3 * DAY, decided)
        if not await insert_event(conn, event_id, d, "published", decided - 40 * DAY):
            continue  # there from an earlier run
        times = [decided - 20 * DAY] * PEER_EARLY + [decided - 2 * DAY] * PEER_LATE
        await conn.executemany(
            "INSERT INTO registrations (registration_id, event_id, member_id, status, arrival, created_at)"
            " VALUES ($1, $2, $3, 'registered', $4, $5) ON CONFLICT DO NOTHING",
            [(fixed_id(f"{peer.key}/{i}"), event_id, members[i], i + 1, t) for i, t in enumerate(times)],
        )
        await conn.execute("UPDATE events SET last_arrival = $2 WHERE event_id = $1", event_id, len(times))


async def load(args: argparse.Namespace) -> int:
    signer = TokenSigner(parse_keys(ServiceSettings().signing_keys.get_secret_value()))
    staff = {"Authorization": f"Bearer {issue_staff_token(signer, 'demo-events', 'comms', None, 3600)}"}
    now = datetime.now(UTC)
    async with httpx.AsyncClient(timeout=30) as http:
        found = await http.get(f"{args.membership_url}/members", params={"limit": 200}, headers=staff)
        found.raise_for_status()
        members = [m["member_id"] for m in found.json()["items"]]
        if len(members) < PEER_EARLY + PEER_LATE:
            print(f"demo events: only {len(members)} members yet; load the demo graduations first", file=sys.stderr)
            return 1
        conn = await asyncpg.connect(args.database_url)
        try:
            async with conn.transaction():
                await insert_peers(conn, members, now)
                for d in UPCOMING:
                    starts = now + d.days_ahead * DAY
                    decide_by = now + d.minimum[1] * DAY if d.minimum else None
                    await insert_event(conn, fixed_id(d.key), definition(d, starts, decide_by), "draft", now)
        finally:
            await conn.close()
        lines = []
        for offset, d in enumerate(UPCOMING):
            event_id = fixed_id(d.key)
            published = await http.post(f"{args.events_url}/events/{event_id}/publish", headers=staff)
            if published.status_code not in (200, 409):  # 409: published by an earlier run
                published.raise_for_status()
            # Other members for each event than for the others and the peers (members[:50]).
            mine = members[50 + 25 * offset :][: d.registrations]
            for member_id in mine:
                token = issue_member_link(signer, member_id, "events", 600, secrets.token_urlsafe(12))
                answer = await http.post(
                    f"{args.events_url}/events/{event_id}/registrations", json={"member_token": token}
                )
                if answer.status_code not in (201, 409, 410):  # registered by an earlier run; closed since
                    answer.raise_for_status()
            lines.append((event_id, d))
        await announced_days_ago(args.database_url, [event_id for event_id, _ in lines], now)
        ran = await http.post(f"{args.events_url}/events/forecast/run", headers=staff)
        ran.raise_for_status()
        for event_id, d in lines:
            shown = (await http.get(f"{args.events_url}/events/{event_id}", headers=staff)).json()
            c, f = shown["counts"], shown.get("forecast")
            note = ""
            if f and f.get("expected") is not None:
                note = f"  minimum {f['minimum']}: forecast {f['expected']} ({f['method']})"
                note += "  BELOW THE MINIMUM" if f["below_minimum"] else ""
            print(f"{event_id}  {d.organiser:<3} {d.kind:<10} {c['registered']:>3} registered {c['waitlisted']:>2}"
                  f" waiting  {d.title}{note}")  # fmt: skip
    return 0


async def announced_days_ago(database_url: str, event_ids: list[str], now: datetime) -> None:
    """The demo's events as announced `ANNOUNCED_DAYS_AGO` days ago: the forecast trusts no
    curve on publishing day (events/forecast/rules.py), and the demo shows one that lags."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE events SET published_at = least(published_at, $2) WHERE event_id = any($1::uuid[])",
            event_ids,
            now - ANNOUNCED_DAYS_AGO * DAY,
        )
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="usn_tools.demo_events", description=__doc__.splitlines()[0])
    parser.add_argument("--events-url", default="http://127.0.0.1:8104")
    parser.add_argument("--membership-url", default="http://127.0.0.1:8101")
    parser.add_argument("--database-url", default="postgresql://events:events-dev@127.0.0.1:55432/events")
    return asyncio.run(load(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
