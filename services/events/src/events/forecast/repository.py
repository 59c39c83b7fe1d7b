"""The forecast's SQL: registration curves (the event's own and its peers'), the daily
forecasts, the organiser's decision, and the figures behind the alert metrics.

A registration counts on a curve from its `created_at` until it ended (`ended_at`):
cancelled and expired ones drop out of the count from then on, erased ones stay
(the rows keep their place in the counts, as everywhere in the service).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alumni_kit.db import Conn
from events.forecast.rules import Forecast, LastAlert, PeerCurve

# At most this many peers, the most recent first: recent curves say most about this year's alumni.
MAX_PEERS = 20
_HAS_MINIMUM = "jsonb_typeof(e.definition->'minimum') = 'object'"
# A peer's point of reference: its decision date, or its deadline when it had no minimum.
_REFERENCE = "coalesce((e.definition->'minimum'->>'decide_by')::timestamptz, e.registration_deadline)"


@dataclass(frozen=True)
class Due:
    """An event whose turnout is to be forecast (published, with a minimum, undecided, not started)."""

    event_id: str
    organiser: str
    kind: str
    minimum: int
    decide_by: datetime
    published_at: datetime
    title: str
    contact: str | None  # the definition's organiser_contact (a role address), if it has one


_DUE = f"""
SELECT e.event_id::text, e.organiser, e.definition->>'kind' AS kind,
       e.definition->>'title' AS title, e.definition->>'organiser_contact' AS contact,
       (e.definition->'minimum'->>'registrations')::int AS minimum,
       (e.definition->'minimum'->>'decide_by')::timestamptz AS decide_by, e.published_at
  FROM events e
 WHERE e.status = 'published' AND {_HAS_MINIMUM} AND e.starts_at > $1
   AND NOT EXISTS (SELECT 1 FROM minimum_decisions d WHERE d.event_id = e.event_id)
"""


async def due(conn: Conn, now: datetime, event_id: str | None = None) -> list[Due]:
    """Every event to forecast now (or just `event_id`, when it is one)."""
    if event_id is None:
        rows = await conn.fetch(_DUE + " ORDER BY e.event_id", now)
    else:
        rows = await conn.fetch(_DUE + " AND e.event_id = $2", now, event_id)
    return [Due(**dict(r)) for r in rows]


_ACTIVE_AT = "r.created_at <= {t} AND (r.ended_at IS NULL OR r.ended_at > {t})"


async def registrations_at(conn: Conn, event_id: str, at: datetime) -> int:
    n = await conn.fetchval(
        f"SELECT count(*) FROM registrations r WHERE r.event_id = $1 AND {_ACTIVE_AT.format(t='$2')}", event_id, at
    )
    return int(n)


_PEERS = f"""
WITH peers AS (
    SELECT e.event_id, {_REFERENCE} AS ref
      FROM events e
     WHERE e.organiser = $1 AND e.definition->>'kind' = $2 AND e.status = 'published' AND e.event_id <> $3
       AND {_REFERENCE} <= $4
     ORDER BY ref DESC
     LIMIT {MAX_PEERS}
)
SELECT count(r.registration_id) FILTER (WHERE {_ACTIVE_AT.format(t="p.ref")}) AS final,
       count(r.registration_id) FILTER (WHERE {_ACTIVE_AT.format(t="p.ref - $5::interval")}) AS at_same_lead
  FROM peers p LEFT JOIN registrations r USING (event_id)
 GROUP BY p.event_id
"""


async def peer_curves(conn: Conn, event: Due, lead: timedelta, now: datetime) -> list[PeerCurve]:
    """Earlier events of the same kind and organiser whose reference time has passed (their
    curve is complete), not cancelled ones (their curve stopped early): two points on each."""
    rows = await conn.fetch(_PEERS, event.organiser, event.kind, event.event_id, now, lead)
    return [PeerCurve(int(r["final"]), int(r["at_same_lead"])) for r in rows]


async def save(conn: Conn, event: Due, f: Forecast, below: bool, now: datetime) -> None:
    await conn.execute(
        """INSERT INTO forecasts (event_id, day, computed_at, registrations, expected, minimum, decide_by, method,
                                  peers, peer_fraction, below_minimum)
           VALUES ($1, ($2 AT TIME ZONE 'Europe/Oslo')::date, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (event_id, day) DO UPDATE SET
               computed_at = excluded.computed_at, registrations = excluded.registrations,
               expected = excluded.expected, minimum = excluded.minimum, decide_by = excluded.decide_by,
               method = excluded.method, peers = excluded.peers, peer_fraction = excluded.peer_fraction,
               below_minimum = excluded.below_minimum""",
        event.event_id,
        now,
        f.registrations,
        f.expected,
        event.minimum,
        event.decide_by,
        f.method,
        f.peers,
        f.peer_fraction,
        below,
    )


_LATEST = """
SELECT computed_at, registrations, expected, minimum, decide_by, method, peers, peer_fraction, below_minimum
  FROM forecasts WHERE event_id = $1 ORDER BY day DESC LIMIT 1
"""


async def latest(conn: Conn, event_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(_LATEST, event_id)
    return dict(row) if row else None


async def decision(conn: Conn, event_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT decision, registrations, decided_at FROM minimum_decisions WHERE event_id = $1", event_id
    )
    return dict(row) if row else None


async def record_decision(conn: Conn, event_id: str, decision: str, registrations: int, who: str, at: datetime) -> bool:
    """False when the event was decided already (by another request)."""
    status = await conn.execute(
        "INSERT INTO minimum_decisions (event_id, decision, registrations, decided_by, decided_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
        event_id,
        decision,
        registrations,
        who,
        at,
    )
    return bool(status == "INSERT 0 1")


_STANDING = f"""
SELECT e.organiser,
       count(*) FILTER (WHERE f.below_minimum) AS below,
       count(*) FILTER (WHERE (e.definition->'minimum'->>'decide_by')::timestamptz <= $1) AS decision_due
  FROM events e
  LEFT JOIN LATERAL (SELECT below_minimum FROM forecasts WHERE event_id = e.event_id ORDER BY day DESC LIMIT 1) f
         ON true
 WHERE e.status = 'published' AND {_HAS_MINIMUM} AND e.starts_at > $1
   AND NOT EXISTS (SELECT 1 FROM minimum_decisions d WHERE d.event_id = e.event_id)
 GROUP BY e.organiser
"""


async def standing(conn: Conn, now: datetime) -> dict[str, tuple[int, int]]:
    """Per organiser: undecided events forecast below their minimum, and those whose decision is due."""
    return {r["organiser"]: (int(r["below"]), int(r["decision_due"])) for r in await conn.fetch(_STANDING, now)}


async def lock_alert(conn: Conn, event_id: str) -> LastAlert:
    """The event's last turnout alert, its row locked to the end of the caller's transaction
    (made when missing), so replicas forecasting at the same moment mail it once."""
    await conn.execute("INSERT INTO turnout_alerts (event_id) VALUES ($1) ON CONFLICT DO NOTHING", event_id)
    row = await conn.fetchrow(
        "SELECT open, expected, minimum FROM turnout_alerts WHERE event_id = $1 FOR UPDATE", event_id
    )
    assert row is not None  # made just above, never deleted
    return LastAlert(row["open"], row["expected"], row["minimum"])


async def record_alert(conn: Conn, event_id: str, expected: int, minimum: int, at: datetime) -> None:
    await conn.execute(
        "UPDATE turnout_alerts SET open = true, expected = $2, minimum = $3, alerted_at = $4, mails = mails + 1"
        " WHERE event_id = $1",
        event_id,
        expected,
        minimum,
        at,
    )


async def close_alert(conn: Conn, event_id: str) -> None:
    """The forecast is back at the minimum: the crossing is over (a later fall is a new one)."""
    await conn.execute("UPDATE turnout_alerts SET open = false WHERE event_id = $1 AND open", event_id)
