"""The read side's SQL: raw counts from one generation's projection tables (generation.sql).

Every function takes the generation's schema (the live one, or one built for an as_of
moment: analytics.generations) and the moment the figures are for (`at`: now, or as_of);
windows (engagement, EVU) end at `at`. Counts come out raw; views.py suppresses them.
Members in several faculties count once in each (and once in the total).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from alumni_kit.db import Conn
from analytics.read.views import (
    CampaignFigures,
    DimensionFigures,
    EngagementFigures,
    EventFigures,
    EvuFigures,
    GrowthPoint,
    MemberFigures,
    PilotFigures,
    ReachFigures,
)

# The four pilot programmes of August 2024, one per faculty (tools/src/usn_tools/fs_demo.py).
PILOT_PROGRAMMES = {"BSL": "TNM", "BØL": "HH", "BOPT": "HS", "GLU": "HIU"}
# Members by attribute: the query parameter's value -> the SQL giving (value, faculty) per member.
DIMENSIONS = {
    "programme": "p->>'programme_code'",
    "level": "p->>'degree_level'",
    "year": "p->>'graduation_year'",
    "campus": "p->>'campus'",
}
GROWTH_MONTHS = 36  # the growth chart's span, back from `at`
MODES = ("communication", "experiential", "volunteer", "philanthropic")


@dataclass(frozen=True)
class EngagementRule:
    """When a member counts as engaged in a mode (the analytics settings)."""

    window_days: int
    threshold: float
    weights: dict[str, float]


def _q(schema: str, sql: str) -> str:
    # `schema` comes from analytics.generations (checked against its name pattern there).
    return sql.replace("{s}", schema)


async def members(conn: Conn, schema: str) -> MemberFigures:
    total = await conn.fetchval(_q(schema, "SELECT count(*) FROM {s}.members"))
    rows = await conn.fetch(_q(schema, "SELECT f, count(*) AS n FROM {s}.members, unnest(faculties) f GROUP BY f"))
    return MemberFigures(total=int(total), by_faculty={r["f"]: int(r["n"]) for r in rows})


def _month(d: date) -> date:
    return d.replace(day=1)


def _months_back(d: date, n: int) -> date:
    index = d.year * 12 + d.month - 1 - n
    return date(index // 12, index % 12 + 1, 1)


async def growth(conn: Conn, schema: str, at: datetime) -> list[GrowthPoint]:
    """Members at the end of each month (the current one: at `at`), the last GROWTH_MONTHS."""
    first = _months_back(_month(at.date()), GROWTH_MONTHS - 1)
    before = await conn.fetch(
        _q(
            schema,
            """SELECT f, count(*) AS n FROM {s}.members LEFT JOIN LATERAL unnest(faculties) f ON true
               WHERE registered_at < $1 GROUP BY f""",
        ),
        datetime(first.year, first.month, 1, tzinfo=at.tzinfo),
    )
    monthly = await conn.fetch(
        _q(
            schema,
            """SELECT (date_trunc('month', registered_at AT TIME ZONE 'UTC'))::date AS m, f, count(*) AS n
               FROM {s}.members LEFT JOIN LATERAL unnest(faculties) f ON true
               WHERE registered_at >= $1 AND registered_at <= $2 GROUP BY m, f""",
        ),
        datetime(first.year, first.month, 1, tzinfo=at.tzinfo),
        at,
    )
    # Totals count each member once: the rows with f NULL are members in no faculty; the
    # total needs distinct members, so it is counted separately.
    totals_before = await conn.fetchval(
        _q(schema, "SELECT count(*) FROM {s}.members WHERE registered_at < $1"),
        datetime(first.year, first.month, 1, tzinfo=at.tzinfo),
    )
    totals_monthly = await conn.fetch(
        _q(
            schema,
            """SELECT (date_trunc('month', registered_at AT TIME ZONE 'UTC'))::date AS m, count(*) AS n
               FROM {s}.members WHERE registered_at >= $1 AND registered_at <= $2 GROUP BY m""",
        ),
        datetime(first.year, first.month, 1, tzinfo=at.tzinfo),
        at,
    )
    running: dict[str, int] = defaultdict(int)
    for r in before:
        if r["f"] is not None:
            running[r["f"]] += int(r["n"])
    total = int(totals_before)
    by_month: dict[date, dict[str, int]] = defaultdict(dict)
    for r in monthly:
        if r["f"] is not None:
            by_month[r["m"]][r["f"]] = int(r["n"])
    total_by_month = {r["m"]: int(r["n"]) for r in totals_monthly}
    points = []
    for i in range(GROWTH_MONTHS):
        month = _months_back(_month(at.date()), GROWTH_MONTHS - 1 - i)
        for f, n in by_month.get(month, {}).items():
            running[f] += n
        total += total_by_month.get(month, 0)
        points.append(GrowthPoint(month=month, total=total, by_faculty=dict(running)))
    return points


async def dimension(conn: Conn, schema: str, name: str) -> DimensionFigures:
    """Members by one attribute × faculty: programme, level, year, campus (from her degrees),
    or status; a member with two degrees counts once per value."""
    if name == "status":
        sql = "SELECT status AS v, f, count(*) AS n FROM {s}.members, unnest(faculties) f GROUP BY v, f"
    else:
        sql = f"""SELECT {DIMENSIONS[name]} AS v, p->>'faculty' AS f, count(DISTINCT member_key) AS n
                  FROM {{s}}.members, jsonb_array_elements(programmes) p
                  WHERE {DIMENSIONS[name]} IS NOT NULL GROUP BY v, f"""
    cells: dict[str, dict[str, int]] = defaultdict(dict)
    for r in await conn.fetch(_q(schema, sql)):
        cells[str(r["v"])][r["f"]] = int(r["n"])
    return DimensionFigures(name, dict(sorted(cells.items())))


async def pilot(conn: Conn, schema: str) -> PilotFigures:
    rows = await conn.fetch(
        _q(
            schema,
            """SELECT p->>'programme_code' AS code, count(DISTINCT member_key) AS n
               FROM {s}.members, jsonb_array_elements(programmes) p
               WHERE p->>'programme_code' = ANY($1::text[]) GROUP BY code""",
        ),
        list(PILOT_PROGRAMMES),
    )
    rest = await conn.fetchval(
        _q(
            schema,
            """SELECT count(*) FROM {s}.members m WHERE NOT EXISTS (
                 SELECT 1 FROM jsonb_array_elements(m.programmes) p WHERE p->>'programme_code' = ANY($1::text[]))""",
        ),
        list(PILOT_PROGRAMMES),
    )
    found = {r["code"]: int(r["n"]) for r in rows}
    return PilotFigures(pilot={code: found.get(code, 0) for code in PILOT_PROGRAMMES}, rest=int(rest))


async def reach(conn: Conn, schema: str, at: datetime) -> ReachFigures:
    """Members whose newest consent fact (up to `at`) for a channel × purpose is `given`."""
    base = await members(conn, schema)
    rows = await conn.fetch(
        _q(
            schema,
            """WITH newest AS (
                 SELECT DISTINCT ON (member_key, channel, purpose) member_key, channel, purpose, state
                 FROM {s}.consent_facts WHERE recorded_at <= $1
                 ORDER BY member_key, channel, purpose, sequence DESC),
               given AS (SELECT n.member_key, channel, purpose, m.faculties
                         FROM newest n JOIN {s}.members m USING (member_key) WHERE state = 'given')
               SELECT channel, purpose, f, count(*) AS n
               FROM given LEFT JOIN LATERAL unnest(faculties) f ON true
               GROUP BY GROUPING SETS ((channel, purpose, f), (channel, purpose))""",
        ),
        at,
    )
    reachable: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    totals: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r["channel"], r["purpose"])
        if r["f"] is None:
            # GROUPING SETS' total row, or members in no faculty (their row is skipped: the total counts them).
            totals[key] = max(totals.get(key, 0), int(r["n"]))
        else:
            reachable[key][r["f"]] = int(r["n"])
    for key in totals:
        reachable.setdefault(key, {})
    return ReachFigures(base.by_faculty, base.total, dict(reachable), totals)


async def campaigns(conn: Conn, schema: str) -> list[CampaignFigures]:
    rows = await conn.fetch(
        _q(
            schema,
            """SELECT c.campaign_id, c.faculty, c.sent, c.skipped, c.bounced,
                      count(d.opened_at) AS opened, count(d.clicked_at) AS clicked
               FROM {s}.campaigns c LEFT JOIN {s}.deliveries d USING (campaign_id)
               GROUP BY c.campaign_id ORDER BY min(c.requested_at) NULLS LAST, c.campaign_id""",
        )
    )
    out = []
    for r in rows:
        skipped = r["skipped"]
        if isinstance(skipped, str):  # jsonb arrives as text without a codec
            skipped = json.loads(skipped)
        faculty = None if r["faculty"] in (None, "USN") else r["faculty"]
        out.append(
            CampaignFigures(
                campaign_id=r["campaign_id"],
                faculty=faculty,
                sent=int(r["sent"]),
                skipped={str(k): int(v) for k, v in (skipped or {}).items()},
                bounced=int(r["bounced"]),
                opened=int(r["opened"]),
                clicked=int(r["clicked"]),
            )
        )
    return out


async def events(conn: Conn, schema: str, at: datetime) -> list[EventFigures]:
    rows = await conn.fetch(
        _q(
            schema,
            """SELECT e.organiser, e.kind,
                      count(DISTINCT e.event_id) FILTER (WHERE e.published_at IS NOT NULL) AS published,
                      count(DISTINCT e.event_id) FILTER (WHERE e.status = 'cancelled') AS cancelled_events,
                      count(r.registered_at) AS registered,
                      count(r.waitlisted_at) AS waitlisted,
                      count(r.offered_at) AS offers,
                      count(r.attended_at) AS attended,
                      count(*) FILTER (WHERE r.registered_at IS NOT NULL AND r.attended_at IS NULL
                                       AND r.cancelled_at IS NULL AND e.status <> 'cancelled'
                                       AND e.ends_at < $1) AS no_shows,
                      count(r.cancelled_at) AS cancellations
               FROM {s}.events e LEFT JOIN {s}.registrations r USING (event_id)
               GROUP BY e.organiser, e.kind ORDER BY e.organiser, e.kind""",
        ),
        at,
    )
    return [
        EventFigures(
            faculty=r["organiser"],
            kind=r["kind"],
            **{k: int(r[k]) for k in ("published", "cancelled_events", "registered", "waitlisted", "offers")},
            **{k: int(r[k]) for k in ("attended", "no_shows", "cancellations")},
        )
        for r in rows
    ]


async def volunteering(conn: Conn, schema: str) -> dict[str, dict[str, int]]:
    rows = await conn.fetch(
        _q(
            schema,
            """SELECT offer_type, f, count(DISTINCT member_key) AS n
               FROM {s}.volunteer_offers, unnest(faculties) f WHERE state = 'offered'
               GROUP BY offer_type, f""",
        )
    )
    cells: dict[str, dict[str, int]] = defaultdict(dict)
    for r in rows:
        cells[r["offer_type"]][r["f"]] = int(r["n"])
    return dict(sorted(cells.items()))


async def engagement(conn: Conn, schema: str, at: datetime, rule: EngagementRule) -> EngagementFigures:
    """Members whose facts in a mode, within the window ending at `at`, score at least the threshold."""
    base = await members(conn, schema)
    rows = await conn.fetch(
        _q(
            schema,
            """WITH scored AS (
                 SELECT member_key, mode FROM {s}.engagement_facts
                 WHERE at > $1 AND at <= $2 GROUP BY member_key, mode HAVING sum(weight) >= $3),
               engaged AS (SELECT s.member_key, s.mode, m.faculties FROM scored s JOIN {s}.members m USING (member_key))
               SELECT mode, f, count(DISTINCT member_key) AS n
               FROM engaged LEFT JOIN LATERAL unnest(faculties) f ON true
               GROUP BY GROUPING SETS ((mode, f), (mode), (f), ())""",
        ),
        at - timedelta(days=rule.window_days),
        at,
        rule.threshold,
    )
    by_mode: dict[str, dict[str, int]] = {m: {} for m in MODES}
    by_mode_total: dict[str, int] = dict.fromkeys(MODES, 0)
    engaged: dict[str, int] = {}
    engaged_total = 0
    # GROUPING SETS: (mode, f) per faculty; (mode) the mode's total; (f) any mode per faculty; () everyone.
    # A NULL f in (mode, f) is members in no faculty: (mode) and () count them once.
    for r in rows:
        mode, f, n = r["mode"], r["f"], int(r["n"])
        if mode is not None and f is not None:
            by_mode.setdefault(mode, {})[f] = n
        elif mode is not None:
            by_mode_total[mode] = max(by_mode_total.get(mode, 0), n)
        elif f is not None:
            engaged[f] = n
        else:
            engaged_total = max(engaged_total, n)
    return EngagementFigures(
        members=base.total,
        members_by_faculty=base.by_faculty,
        by_mode=by_mode,
        by_mode_total=by_mode_total,
        engaged=engaged,
        engaged_total=engaged_total,
        weights=rule.weights,
        window_days=rule.window_days,
    )


async def evu(conn: Conn, schema: str, at: datetime, window_days: int = 365) -> EvuFigures:
    """Members (joined by person key) with an enrolment in the year up to `at`, by the course's faculty."""
    base = await members(conn, schema)
    rows = await conn.fetch(
        _q(
            schema,
            """WITH taken AS (
                 SELECT DISTINCT m.member_key, e.faculty, e.enrolment_id
                 FROM {s}.evu_enrolments e JOIN {s}.members m ON m.person_key = e.person_key
                 WHERE NOT e.cancelled AND e.enrolled_at > $1 AND e.enrolled_at <= $2)
               SELECT faculty, count(DISTINCT member_key) AS n, count(DISTINCT enrolment_id) AS courses
               FROM taken GROUP BY GROUPING SETS ((faculty), ())""",
        ),
        at - timedelta(days=window_days),
        at,
    )
    enrolled: dict[str, int] = {}
    enrolled_total = 0
    courses = 0
    for r in rows:
        if r["faculty"] is None:
            enrolled_total, courses = int(r["n"]), int(r["courses"])
        else:
            enrolled[r["faculty"]] = int(r["n"])
    return EvuFigures(members=base.total, enrolled=enrolled, enrolled_total=enrolled_total, enrolments=courses)
