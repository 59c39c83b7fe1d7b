"""Analytics' pure projection: incremental application equals a recomputation from the raw events.

For generated streams delivered with duplicates, in any interleaving of partitions
and topics and cut into any batches, the rows are those of applying each distinct
event once, in the order they happened (docs: services/analytics/README.md).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.rules import Projection, anonymous_key
from tests.analytics_streams import MEMBERS, batches, build, deliveries, streams


def _recomputed(events: list[Any]) -> Projection:
    once = Projection()
    for event in events:  # one event at a time, in the true order
        once.apply([event])
    return once


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), specs=streams)
def test_incremental_equals_recomputation(data: st.DataObject, specs: list[Any]) -> None:
    built = build(specs)
    events = [e for _, _, e in built]
    delivered, cuts = data.draw(deliveries(len(events)))
    incremental = Projection()
    for batch in batches([events[i] for i in delivered], cuts):
        incremental.apply(batch)
    assert incremental.snapshot() == _recomputed(events).snapshot()


@given(specs=streams)
@settings(max_examples=50, deadline=None)
def test_erased_members_leave_no_id(specs: list[Any]) -> None:
    specs = [*specs, *(("erased", m) for m in MEMBERS)]
    projection = _recomputed([e for _, _, e in build(specs)])
    assert projection.rows["members"] == {}
    for rows in projection.rows.values():
        for row in rows.values():
            assert row.get("member_key") in (None, *(anonymous_key(m) for m in MEMBERS))
