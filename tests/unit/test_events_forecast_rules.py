"""The minimum-turnout forecast's pure rules (events/forecast/rules.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from events.forecast import rules
from events.forecast.rules import PeerCurve

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
WEEK_AGO = NOW - timedelta(days=7)
IN_TEN_DAYS = NOW + timedelta(days=10)


def test_the_median_peer_scales_the_count_now() -> None:
    # Peers had 80 %, 50 % and 90 % of their final count ten days before their decision.
    peers = [PeerCurve(100, 80), PeerCurve(40, 20), PeerCurve(10, 9)]
    f = rules.forecast(8, WEEK_AGO, IN_TEN_DAYS, NOW, peers)
    assert (f.method, f.peers, f.peer_fraction, f.expected) == ("peers", 3, 0.8, 10)
    assert rules.below_minimum(f, 30)
    assert not rules.below_minimum(rules.forecast(28, WEEK_AGO, IN_TEN_DAYS, NOW, peers), 30)  # 35 expected


def test_one_peer_that_filled_at_the_last_minute_does_not_sway_the_median() -> None:
    peers = [PeerCurve(50, 40), PeerCurve(60, 48), PeerCurve(100, 1)]
    assert rules.forecast(20, WEEK_AGO, IN_TEN_DAYS, NOW, peers).expected == 25


def test_peers_without_registrations_do_not_count_and_the_own_pace_answers_without_peers() -> None:
    # 7 days since publication, 10 to go: 14 at this pace becomes 14 × 17 / 7 = 34.
    for peers in ([], [PeerCurve(0, 0)], [PeerCurve(30, 0)]):
        f = rules.forecast(14, WEEK_AGO, IN_TEN_DAYS, NOW, peers)
        assert (f.method, f.expected) == ("own-pace", 34)


def test_too_early_to_tell_never_alerts_and_the_decision_date_counts_what_there_is() -> None:
    fresh = rules.forecast(0, NOW - timedelta(hours=3), IN_TEN_DAYS, NOW, [])
    assert (fresh.method, fresh.expected) == ("too-early", 0)
    assert not rules.below_minimum(fresh, 30)
    late = rules.forecast(12, WEEK_AGO, NOW - timedelta(minutes=1), NOW, [PeerCurve(100, 50)])
    assert (late.method, late.expected) == ("decided", 12)
    assert rules.below_minimum(late, 30)


def test_on_publishing_day_the_peers_do_not_alarm_either() -> None:
    # Published three hours ago, ten days before its decision: its peers had 80 % by then,
    # it has two so far. Far behind them on paper, but its invitations are still arriving.
    peers = [PeerCurve(100, 80), PeerCurve(40, 32), PeerCurve(10, 8)]
    fresh = rules.forecast(2, NOW - timedelta(hours=3), IN_TEN_DAYS, NOW, peers)
    assert (fresh.method, fresh.expected, fresh.peers, fresh.peer_fraction) == ("too-early", 2, 3, 0.8)
    assert not rules.below_minimum(fresh, 30)
    # A day on, the peers answer: 2 / 0.8 expected, below the minimum.
    day_on = rules.forecast(2, NOW - timedelta(days=1), IN_TEN_DAYS, NOW, peers)
    assert (day_on.method, day_on.expected) == ("peers", 2)
    assert rules.below_minimum(day_on, 30)


def test_a_peer_that_lost_registrations_later_reads_as_complete() -> None:
    assert rules.fraction_reached(PeerCurve(10, 14)) == 1.0
    assert rules.fraction_reached(PeerCurve(0, 3)) is None


def test_the_lead_time_is_never_negative() -> None:
    assert rules.lead_time(NOW - timedelta(days=1), NOW) == timedelta(0)
    assert rules.lead_time(IN_TEN_DAYS, NOW) == timedelta(days=10)


curves = st.lists(
    st.integers(0, 500)
    .flatmap(lambda final: st.tuples(st.just(final), st.integers(0, final)))
    .map(lambda t: PeerCurve(*t)),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(
    count=st.integers(0, 2000),
    days_published=st.floats(0, 120),
    days_left=st.floats(0.001, 120),
    peers=curves,
)
def test_a_forecast_is_never_below_the_count_now_and_grows_with_it(
    count: int, days_published: float, days_left: float, peers: list[PeerCurve]
) -> None:
    published, decide_by = NOW - timedelta(days=days_published), NOW + timedelta(days=days_left)
    f = rules.forecast(count, published, decide_by, NOW, peers)
    assert f.registrations == count
    assert f.expected >= count  # registrations already made are not forecast away
    assert rules.forecast(count + 1, published, decide_by, NOW, peers).expected >= f.expected
    if f.peer_fraction is not None:
        assert 0 <= f.peer_fraction <= 1
    assert (f.method == "too-early") == (days_published < 1)  # nothing on the first day alarms
    if f.method != "too-early":
        assert (f.method == "peers") == (f.peer_fraction is not None and f.peer_fraction > 0)


@settings(max_examples=200, deadline=None)
@given(peers=curves, faster=st.integers(1, 50))
def test_peers_that_had_got_further_make_a_lower_forecast(peers: list[PeerCurve], faster: int) -> None:
    """The same count reads as worse when the peers had reached more of their final by now."""
    ahead = [PeerCurve(p.final, min(p.final, p.at_same_lead + faster)) for p in peers]
    slow = rules.forecast(40, WEEK_AGO, IN_TEN_DAYS, NOW, peers)
    fast = rules.forecast(40, WEEK_AGO, IN_TEN_DAYS, NOW, ahead)
    if slow.method == fast.method == "peers":
        assert fast.expected <= slow.expected


# --- the organiser's alert by mail: once per crossing, again only when materially worse ---


def test_the_first_crossing_is_mailed_and_the_same_figures_are_not_mailed_again() -> None:
    assert rules.alert_due(None, 10, 30)
    mailed = rules.LastAlert(open=True, expected=10, minimum=30)
    assert not rules.alert_due(mailed, 10, 30)
    assert not rules.alert_due(mailed, 12, 30)  # better, still below: nothing new to act on
    assert not rules.alert_due(mailed, 8, 30)  # 2 fewer: below 10 % of the minimum (3)
    assert rules.alert_due(mailed, 7, 30)  # 3 fewer: materially worse


def test_a_new_crossing_or_a_changed_minimum_is_mailed() -> None:
    assert rules.alert_due(rules.LastAlert(open=False, expected=10, minimum=30), 10, 30)  # it was back at the minimum
    assert rules.alert_due(rules.LastAlert(open=True, expected=10, minimum=30), 10, 40)


def test_a_small_minimum_still_needs_one_registration_less() -> None:
    mailed = rules.LastAlert(open=True, expected=3, minimum=5)
    assert not rules.alert_due(mailed, 3, 5)
    assert rules.alert_due(mailed, 2, 5)


@given(st.integers(0, 1000), st.integers(0, 1000), st.integers(1, 1000))
def test_never_mailed_again_for_a_forecast_as_good_or_better(last: int, now: int, minimum: int) -> None:
    if now >= last:
        assert not rules.alert_due(rules.LastAlert(open=True, expected=last, minimum=minimum), now, minimum)
