"""The strategy's value model on live figures: pure, no I/O (docs/analytics.md, "Value model").

Money is whole NOK (int); shares of the strategy are basis points (1 % = 100 bp), so the
strategy's own figures come out exactly (22,700 × 0.5 % × 17,000 = 1,929,500).
Every figure computed from a count of people is suppressed with it (cells.rules).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from analytics.cells.rules import Cell, primary, small

# EVU (continuing education): one course's price less its cost, per participant a year.
EVU_PRICE_NOK = 20_000
EVU_COST_NOK = 3_000
EVU_NET_NOK = EVU_PRICE_NOK - EVU_COST_NOK  # 17,000
STRATEGY_MEMBERS = 22_700  # the strategy's member base for its EVU table
STRATEGY_EVU_SHARES_BP = (50, 100, 150)  # 0.5 %, 1.0 %, 1.5 % of members take one course a year

# Engagement: what an engaged alumna is worth a year, low and high (NOK).
ENGAGEMENT_VALUE_LOW_NOK = 400
ENGAGEMENT_VALUE_HIGH_NOK = 1_000
STRATEGY_FORMER_STUDENTS = 227_000  # everyone in FS: the strategy's own base
STRATEGY_ENGAGED_SHARES_BP = (500, 1_000, 1_500)  # 5 %, 10 %, 15 % engaged

# Growth: 23,000 members by the end of 2027 (about 10 % of the former students).
GOAL_MEMBERS = 23_000
GOAL_DATE = date(2027, 12, 31)


def of_share(base: int, share_bp: int, per_person_nok: int) -> int:
    """base × share × NOK a person, in whole NOK (rounded half up)."""
    return (base * share_bp * per_person_nok + 5_000) // 10_000


@dataclass(frozen=True)
class EvuScenario:
    share_bp: int
    strategy_revenue_nok: int  # on the strategy's 22,700 members
    live_revenue_nok: Cell  # the same share of today's members


@dataclass(frozen=True)
class EvuModel:
    members: Cell
    enrolled: Cell  # members who took a course in the window (a count of people)
    observed_share: float | None
    observed_revenue_nok: Cell  # members × observed share × 17,000 = enrolled × 17,000
    net_per_course_nok: int = EVU_NET_NOK
    scenarios: list[EvuScenario] = field(default_factory=list)


def evu_model(members: int, enrolled: int, shares_bp: tuple[int, ...] = STRATEGY_EVU_SHARES_BP) -> EvuModel:
    """EVU revenue on the live member count and the observed share, beside the strategy's table."""
    shown_members, shown_enrolled = primary(members), primary(enrolled)
    observed = None if shown_enrolled is None or not shown_members else shown_enrolled / shown_members
    revenue = None if shown_enrolled is None else shown_enrolled * EVU_NET_NOK
    scenarios = [
        EvuScenario(
            share_bp=bp,
            strategy_revenue_nok=of_share(STRATEGY_MEMBERS, bp, EVU_NET_NOK),
            live_revenue_nok=None if shown_members is None else of_share(shown_members, bp, EVU_NET_NOK),
        )
        for bp in shares_bp
    ]
    return EvuModel(shown_members, shown_enrolled, observed, revenue, EVU_NET_NOK, scenarios)


@dataclass(frozen=True)
class ValueRange:
    low_nok: Cell
    high_nok: Cell


@dataclass(frozen=True)
class EngagementScenario:
    share_bp: int
    on_members: ValueRange  # the share of today's members
    on_former_students: ValueRange  # the strategy's own base of 227,000


@dataclass(frozen=True)
class EngagementModel:
    members: Cell
    engaged: Cell
    engaged_share: float | None
    observed: ValueRange  # engaged members × 400 … 1,000 NOK
    former_students: int = STRATEGY_FORMER_STUDENTS
    scenarios: list[EngagementScenario] = field(default_factory=list)


def _range(base: Cell, share_bp: int) -> ValueRange:
    if base is None:
        return ValueRange(None, None)
    return ValueRange(
        of_share(base, share_bp, ENGAGEMENT_VALUE_LOW_NOK), of_share(base, share_bp, ENGAGEMENT_VALUE_HIGH_NOK)
    )


def engagement_model(
    members: int, engaged: int, shares_bp: tuple[int, ...] = STRATEGY_ENGAGED_SHARES_BP
) -> EngagementModel:
    """Engagement value = share engaged × 400–1,000 NOK a person, on actual members and on 227,000."""
    shown_members, shown_engaged = primary(members), primary(engaged)
    observed_share = None if shown_engaged is None or not shown_members else shown_engaged / shown_members
    observed = _range(shown_engaged, 10_000)  # all of the engaged: 100 %
    scenarios = [
        EngagementScenario(bp, _range(shown_members, bp), _range(STRATEGY_FORMER_STUDENTS, bp)) for bp in shares_bp
    ]
    return EngagementModel(shown_members, shown_engaged, observed_share, observed, STRATEGY_FORMER_STUDENTS, scenarios)


@dataclass(frozen=True)
class Growth:
    members: Cell
    goal: int
    goal_date: date
    progress: float | None  # members / goal
    needed_per_month: int | None  # to reach the goal by its date from today
    pace_per_month: float | None  # observed over the last twelve months (or fewer)
    projected_at_goal_date: int | None  # today's members + pace × months left


def months_between(start: date, end: date) -> int:
    """Whole calendar months from `start` to `end` (0 when `end` is not later)."""
    return max(0, (end.year - start.year) * 12 + end.month - start.month)


def growth(members: int, today: date, members_a_year_ago: int | None = None, months_observed: int = 12) -> Growth:
    """Members against the goal of 23,000 by 2027; the pace from a year ago (when known)."""
    shown = primary(members)
    left = months_between(today, GOAL_DATE)
    needed = None if shown is None else max(0, -(-(GOAL_MEMBERS - shown) // max(left, 1)))
    pace: float | None = None
    projected: int | None = None
    gained = None if shown is None or members_a_year_ago is None else shown - members_a_year_ago
    # The gain is a count of people too: a pace from 1–4 newcomers would give them back.
    if gained is not None and not small(abs(gained)) and months_observed > 0:
        pace = gained / months_observed
        projected = round(shown + pace * left)  # type: ignore[operator]
    progress = None if shown is None else shown / GOAL_MEMBERS
    return Growth(shown, GOAL_MEMBERS, GOAL_DATE, progress, needed, pace, projected)
