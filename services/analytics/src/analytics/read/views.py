"""Figures from the projections → what the API, the CSV and the dashboard show: pure.

Every count of people passes through `cells.rules` here, USN-wide first, and only then
is cut down to the caller's faculty (scope.py): one suppression for all views.
Counts that are not of people (events held, campaigns sent) are shown as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from analytics.cells.rules import Cell, breakdown, primary, share, table
from analytics.read.scope import Scope
from analytics.value import rules as value
from usn_schemas.vocabulary import FACULTIES

Json = dict[str, Any]


@dataclass(frozen=True)
class MemberFigures:
    total: int  # every member, also those in no faculty yet
    by_faculty: dict[str, int]


@dataclass(frozen=True)
class GrowthPoint:
    month: date  # the first day of the month; the count at its end (or now)
    total: int
    by_faculty: dict[str, int]


@dataclass(frozen=True)
class DimensionFigures:
    """Members by one attribute (programme, degree level, …) and faculty."""

    dimension: str
    cells: dict[str, dict[str, int]]  # value -> faculty -> members


@dataclass(frozen=True)
class PilotFigures:
    pilot: dict[str, int]  # programme code -> members
    rest: int


@dataclass(frozen=True)
class ReachFigures:
    members: dict[str, int]  # faculty -> members (the base of every share)
    members_total: int
    reachable: dict[tuple[str, str], dict[str, int]]  # (channel, purpose) -> faculty -> members
    reachable_total: dict[tuple[str, str], int]  # (channel, purpose) -> members, also in no faculty


@dataclass(frozen=True)
class CampaignFigures:
    campaign_id: str
    faculty: str | None  # None: USN-wide
    sent: int
    skipped: dict[str, int]  # reason -> recipients
    bounced: int
    opened: int  # unique
    clicked: int  # unique


@dataclass(frozen=True)
class EventFigures:
    faculty: str  # the organiser ("USN" for USN-wide)
    kind: str
    published: int  # events, not people
    cancelled_events: int
    registered: int
    waitlisted: int
    offers: int
    attended: int
    no_shows: int
    cancellations: int


@dataclass(frozen=True)
class EngagementFigures:
    members: int
    members_by_faculty: dict[str, int]
    by_mode: dict[str, dict[str, int]]  # mode -> faculty -> engaged members
    by_mode_total: dict[str, int]  # mode -> engaged members, also in no faculty
    engaged: dict[str, int]  # faculty -> engaged in any mode
    engaged_total: int
    weights: dict[str, float] = field(default_factory=dict)
    window_days: int = 365


@dataclass(frozen=True)
class EvuFigures:
    members: int
    enrolled: dict[str, int]  # faculty -> members enrolled in the window
    enrolled_total: int
    enrolments: int  # courses taken (not people)


def _stamp(as_of: datetime | None, now: datetime) -> str:
    return (as_of or now).isoformat()


def _faculty_cells(total: int, by_faculty: Mapping[str, int]) -> tuple[Cell, dict[str, Cell]]:
    parts: dict[str, int] = {f: int(by_faculty.get(f, 0)) for f in FACULTIES}
    got = breakdown(parts, total=total)
    return got.total, got.parts


def _scoped(scope: Scope, total: Cell, parts: dict[str, Cell]) -> tuple[Cell, dict[str, Cell]]:
    if scope.faculty is None:
        return total, parts
    return parts[scope.faculty], {scope.faculty: parts[scope.faculty]}


def members(figures: MemberFigures, scope: Scope, as_of: datetime | None, now: datetime) -> Json:
    """The pinned answer of `GET /analytics/members`."""
    total, parts = _scoped(scope, *_faculty_cells(figures.total, figures.by_faculty))
    return {"as_of": _stamp(as_of, now), "total": total, "by_faculty": parts}


def growth(points: list[GrowthPoint], scope: Scope, as_of: datetime | None, now: datetime) -> Json:
    """Members month by month against the goal, with the pace and projection."""
    cells: list[Cell] = [_scoped(scope, *_faculty_cells(p.total, p.by_faculty))[0] for p in points]
    series = [{"month": p.month.strftime("%Y-%m"), "members": c} for p, c in zip(points, cells, strict=True)]
    today = (as_of or now).date()
    latest = cells[-1] if cells else 0
    back = max(0, len(points) - 13)  # twelve months back, or the first month there is
    months = value.months_between(points[back].month, points[-1].month) if points else 0
    got = value.growth(latest, today, cells[back], months) if latest is not None else None
    model: Json = {
        "members": got.members if got else None,
        "progress": got.progress if got else None,
        "needed_per_month": got.needed_per_month if got else None,
        "pace_per_month": got.pace_per_month if got else None,
        "projected_at_goal_date": got.projected_at_goal_date if got else None,
    }
    return {
        "as_of": _stamp(as_of, now),
        "faculty": scope.faculty,
        "goal": value.GOAL_MEMBERS,
        "goal_date": value.GOAL_DATE.isoformat(),
        "series": series,
        "growth": model,
    }


def dimension(figures: DimensionFigures, scope: Scope, as_of: datetime | None, now: datetime) -> Json:
    """Members by one attribute × faculty (a two-way table, suppressed with its margins)."""
    got = table(figures.cells, FACULTIES)
    if scope.faculty is not None:
        rows = {v: got.cells[v][scope.faculty] for v in got.cells}
        total = got.column_totals[scope.faculty]
    else:
        rows = dict(got.row_totals)
        total = got.total
    by_faculty = {v: {f: got.cells[v][f] for f in scope.faculties()} for v in got.cells}
    return {
        "as_of": _stamp(as_of, now),
        "dimension": figures.dimension,
        "total": total,
        "by_value": rows,
        "by_value_and_faculty": by_faculty,
    }


def pilot(figures: PilotFigures, as_of: datetime | None, now: datetime) -> Json:
    """The four pilot programmes against the rest (USN-wide: programmes cross faculties' views)."""
    got = breakdown({**figures.pilot, "rest": figures.rest})
    rest = got.parts.pop("rest")
    return {"as_of": _stamp(as_of, now), "total": got.total, "pilot": got.parts, "rest": rest}


def _subset(
    by_faculty: Mapping[str, int], total: int, base: Mapping[str, int], base_total: int, base_parts: Mapping[str, Cell]
) -> tuple[Cell, dict[str, Cell]]:
    """Members with some property (reached, engaged) USN-wide and per faculty, beside the members
    themselves: in each faculty and USN-wide the property's holders and the rest are a group;
    the faculties are a group of the USN-wide figure; and a hidden USN-wide figure is never
    the sum of the faculties shown."""
    held: dict[str, int] = {f: min(int(by_faculty.get(f, 0)), int(base.get(f, 0))) for f in FACULTIES}
    hidden = {
        f
        for f in FACULTIES
        if base_parts[f] is None or breakdown({"n": held[f]}, total=int(base.get(f, 0))).parts["n"] is None
    }
    usn = breakdown(held, total=max(total, sum(held.values())), hidden=hidden)
    parts = dict(usn.parts)
    usn_cell = None if usn.total is None else breakdown({"n": usn.total}, total=base_total).parts["n"]
    shown = [f for f in FACULTIES if parts[f] is not None and held[f] > 0]
    every_one_shown = len(shown) == len([f for f in FACULTIES if held[f] > 0])
    if usn_cell is None and shown and every_one_shown and total == sum(held.values()):
        parts[min(shown, key=lambda f: (held[f], f))] = None  # the faculties would add up to it: hide one
    return usn_cell, parts


def reach(figures: ReachFigures, scope: Scope, as_of: datetime | None, now: datetime) -> Json:
    """How many members each channel × purpose reaches today, and the share of members."""
    base_total, base_parts = _faculty_cells(figures.members_total, figures.members)
    base, _ = _scoped(scope, base_total, base_parts)
    rows = []
    for (channel, purpose), by_faculty in sorted(figures.reachable.items()):
        total = int(figures.reachable_total.get((channel, purpose), sum(by_faculty.values())))
        usn_cell, parts = _subset(by_faculty, total, figures.members, figures.members_total, base_parts)
        reached_cell, faculty_cells = _scoped(scope, usn_cell, parts)
        rows.append(
            {
                "channel": channel,
                "purpose": purpose,
                "members": reached_cell,
                "share": share(reached_cell, base),
                "by_faculty": faculty_cells,
            }
        )
    return {"as_of": _stamp(as_of, now), "members": base, "reach": rows}


def campaigns(rows: list[CampaignFigures], scope: Scope, as_of: datetime | None, now: datetime) -> Json:
    """Per campaign: recipients sent or skipped (by reason), and of those sent: bounced, opened, clicked."""
    out = []
    for c in rows:
        if scope.faculty is not None and c.faculty not in (None, scope.faculty):
            continue
        recipients = breakdown({"sent": c.sent, **{f"skipped:{r}": n for r, n in c.skipped.items()}})
        sent = recipients.parts["sent"]
        # Each subset of the sent is a group with its complement (sent − bounced, …).
        subsets = {
            k: breakdown({k: n}, total=c.sent).parts[k]
            for k, n in (("bounced", c.bounced), ("opened", c.opened), ("clicked", c.clicked))
        }
        if sent is None:
            subsets = dict.fromkeys(subsets)
        out.append(
            {
                "campaign_id": c.campaign_id,
                "faculty": c.faculty,
                "recipients": recipients.total,
                "sent": sent,
                "skipped": {r: recipients.parts[f"skipped:{r}"] for r in c.skipped},
                **subsets,
                "open_rate": share(subsets["opened"], sent),
                "click_rate": share(subsets["clicked"], sent),
            }
        )
    return {"as_of": _stamp(as_of, now), "campaigns": out}


def events(rows: list[EventFigures], scope: Scope, as_of: datetime | None, now: datetime) -> Json:
    """Per organiser and kind: events held, and the people who registered, waited, came."""
    out = []
    for e in rows:
        if scope.faculty is not None and e.faculty not in ("USN", scope.faculty):
            continue
        # Of the registered: attended, no-show, not yet (a group with its total).
        came = breakdown(
            {"attended": e.attended, "no_shows": e.no_shows}, total=max(e.registered, e.attended + e.no_shows)
        )
        out.append(
            {
                "faculty": e.faculty,
                "kind": e.kind,
                "published": e.published,
                "cancelled_events": e.cancelled_events,
                "registered": came.total,
                "waitlisted": primary(e.waitlisted),
                "offers": primary(e.offers),
                "attended": came.parts["attended"],
                "no_shows": came.parts["no_shows"],
                "cancellations": primary(e.cancellations),
            }
        )
    return {"as_of": _stamp(as_of, now), "events": out}


def volunteering(cells: dict[str, dict[str, int]], scope: Scope, as_of: datetime | None, now: datetime) -> Json:
    """Volunteer offers by type × faculty (a two-way table with its margins)."""
    got = table(cells, FACULTIES)
    by_type = {t: (got.cells[t][scope.faculty] if scope.faculty else got.row_totals[t]) for t in got.cells}
    return {
        "as_of": _stamp(as_of, now),
        "total": got.column_totals[scope.faculty] if scope.faculty else got.total,
        "by_type": by_type,
        "by_type_and_faculty": {t: {f: got.cells[t][f] for f in scope.faculties()} for t in got.cells},
    }


def engagement(figures: EngagementFigures, scope: Scope, as_of: datetime | None, now: datetime) -> Json:
    """Engaged members by CASE mode and in any mode; each with its complement in the group."""
    base_total, base_parts = _faculty_cells(figures.members, figures.members_by_faculty)
    base, _ = _scoped(scope, base_total, base_parts)

    def engaged_cell(by_faculty: Mapping[str, int], total: int) -> Cell:
        usn_cell, parts = _subset(by_faculty, total, figures.members_by_faculty, figures.members, base_parts)
        return _scoped(scope, usn_cell, parts)[0]

    modes = {m: engaged_cell(by_f, figures.by_mode_total.get(m, 0)) for m, by_f in figures.by_mode.items()}
    engaged = engaged_cell(figures.engaged, figures.engaged_total)
    return {
        "as_of": _stamp(as_of, now),
        "members": base,
        "engaged": engaged,
        "engaged_share": share(engaged, base),
        "by_mode": modes,
        "by_mode_share": {m: share(n, base) for m, n in modes.items()},
        "weights": {m: float(w) for m, w in figures.weights.items()},
        "window_days": figures.window_days,
    }


def evu(figures: EvuFigures, members_cell: Cell, scope: Scope, as_of: datetime | None, now: datetime) -> Json:
    """Members who took a continuing-education course in the window, by faculty."""
    total, parts = _scoped(scope, *_faculty_cells(figures.enrolled_total, figures.enrolled))
    return {
        "as_of": _stamp(as_of, now),
        "members": members_cell,
        "enrolled": total,
        "enrolled_by_faculty": parts,
        "enrolled_share": share(total, members_cell),
        # Courses taken, USN-wide (never fewer than the people taking them): hidden with them,
        # and not in a faculty's answer, whose own count it would not match.
        "enrolments": primary(figures.enrolments) if total is not None and scope.faculty is None else None,
    }


def value_model(
    members_cell: Cell,
    enrolled_cell: Cell,
    engaged_cell: Cell,
    growth_json: Json,
    as_of: datetime | None,
    now: datetime,
) -> Json:
    """The strategy's value model on today's (suppressed) figures, beside its own tables."""
    evu_model = value.evu_model(members_cell or 0, enrolled_cell or 0)
    engagement_model = value.engagement_model(members_cell or 0, engaged_cell or 0)
    evu_json = asdict(evu_model)
    engagement_json = asdict(engagement_model)
    if members_cell is None:  # a suppressed base: nothing computed from it is shown
        evu_json = {
            **evu_json,
            "members": None,
            "scenarios": [{**s, "live_revenue_nok": None} for s in evu_json["scenarios"]],
        }
    if enrolled_cell is None:
        evu_json.update(enrolled=None, observed_share=None, observed_revenue_nok=None)
    if engaged_cell is None:
        engagement_json.update(engaged=None, engaged_share=None, observed={"low_nok": None, "high_nok": None})
    return {
        "as_of": _stamp(as_of, now),
        "evu": {
            **evu_json,
            "price_nok": value.EVU_PRICE_NOK,
            "cost_nok": value.EVU_COST_NOK,
            "strategy_members": value.STRATEGY_MEMBERS,
        },
        "engagement": {
            **engagement_json,
            "value_per_person_nok": {"low": value.ENGAGEMENT_VALUE_LOW_NOK, "high": value.ENGAGEMENT_VALUE_HIGH_NOK},
        },
        "growth": {k: growth_json[k] for k in ("goal", "goal_date", "growth")},
    }
