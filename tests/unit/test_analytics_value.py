"""The strategy's value model (analytics.value.rules) on live figures."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.value.rules import (
    EVU_NET_NOK,
    GOAL_MEMBERS,
    engagement_model,
    evu_model,
    growth,
    of_share,
)


def test_the_strategys_evu_table_comes_out_exactly() -> None:
    model = evu_model(members=22_700, enrolled=227)
    assert EVU_NET_NOK == 17_000
    assert [(s.share_bp, s.strategy_revenue_nok) for s in model.scenarios] == [
        (50, 1_929_500),
        (100, 3_859_000),
        (150, 5_788_500),
    ]
    # On the same 22,700 live members the scenarios equal the strategy's; the observed 1 % too.
    assert [s.live_revenue_nok for s in model.scenarios] == [1_929_500, 3_859_000, 5_788_500]
    assert model.observed_share == 0.01
    assert model.observed_revenue_nok == 3_859_000


def test_evu_on_live_members_and_a_small_enrolment() -> None:
    model = evu_model(members=1_200, enrolled=3)
    assert model.members == 1_200
    assert model.enrolled is None
    assert model.observed_share is None
    assert model.observed_revenue_nok is None
    assert [s.live_revenue_nok for s in model.scenarios] == [102_000, 204_000, 306_000]


def test_engagement_value_on_members_beside_the_strategys_base() -> None:
    model = engagement_model(members=2_000, engaged=500)
    assert model.engaged_share == 0.25
    assert (model.observed.low_nok, model.observed.high_nok) == (200_000, 500_000)
    ten = next(s for s in model.scenarios if s.share_bp == 1_000)
    assert (ten.on_members.low_nok, ten.on_members.high_nok) == (80_000, 200_000)
    assert (ten.on_former_students.low_nok, ten.on_former_students.high_nok) == (9_080_000, 22_700_000)


def test_growth_against_the_goal() -> None:
    got = growth(members=11_500, today=date(2026, 12, 2), members_a_year_ago=8_500)
    assert got.goal == GOAL_MEMBERS
    assert got.progress == 0.5
    assert got.needed_per_month == 959  # 11,500 in 12 months: 958.3, rounded up
    assert got.pace_per_month == 250.0
    assert got.projected_at_goal_date == 14_500


def test_a_pace_from_a_handful_of_newcomers_is_suppressed() -> None:
    got = growth(members=103, today=date(2026, 12, 2), members_a_year_ago=100)
    assert got.members == 103
    assert got.pace_per_month is None
    assert got.projected_at_goal_date is None


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 300_000), st.integers(0, 10_000), st.integers(0, 5_000))
def test_of_share_is_the_rounded_product(base: int, share_bp: int, nok: int) -> None:
    assert abs(of_share(base, share_bp, nok) - base * share_bp / 10_000 * nok) <= 0.5 + 1e-6 * base * nok
