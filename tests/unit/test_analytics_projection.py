"""Analytics' pure projection: incremental application equals a recomputation from the raw events.

For generated streams delivered with duplicates, in any interleaving of partitions
and topics and cut into any batches, the rows are those of applying each distinct
event once, in the order they happened (docs: services/analytics/README.md).
"""

from __future__ import annotations

import hashlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.rules import Projection, anonymous_key
from tests.analytics_streams import MEMBERS, PEPPER, batches, build, deliveries, streams


def _recomputed(events: list[Any], pepper: bytes = PEPPER) -> Projection:
    once = Projection(pepper=pepper)
    for event in events:  # one event at a time, in the true order
        once.apply([event])
    return once


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), specs=streams)
def test_incremental_equals_recomputation(data: st.DataObject, specs: list[Any]) -> None:
    built = build(specs)
    events = [e for _, _, e in built]
    delivered, cuts = data.draw(deliveries(len(events)))
    incremental = Projection(pepper=PEPPER)
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
            assert row.get("member_key") in (None, *(anonymous_key(PEPPER, m) for m in MEMBERS))


def _keys_from_the_id_alone(member_id: str) -> set[str]:
    """What anyone holding her member id (and this code) can compute without the pepper."""
    raw = member_id.encode()
    digests = {
        hashlib.sha256(raw).hexdigest(),
        hashlib.sha256(b"usn-alumni-analytics/erased/" + raw).hexdigest(),  # the key before the pepper
        anonymous_key(b"", member_id).removeprefix("erased-"),
    }
    return {d[:32] for d in digests} | {"erased-" + d[:32] for d in digests} | {member_id}


def test_an_erased_members_key_cannot_be_recomputed_from_her_id_alone() -> None:
    erased = MEMBERS[0]
    specs = [("registered", erased), ("sent", "c-2026-hh", erased), ("opened", "c-2026-hh", erased), ("erased", erased)]
    events = [e for _, _, e in build(specs)]
    here, elsewhere = _recomputed(events), _recomputed(events, b"another-deployments-pepper")
    (stored,) = here.erased
    # Her send and open stay as anonymous counts under the stored key, never her id.
    assert [r["member_key"] for r in here.rows["deliveries"].values()] == [stored]
    assert stored not in _keys_from_the_id_alone(erased)
    # The same id under another pepper gives another key: the id alone does not determine it ...
    assert set(elsewhere.erased) != {stored}
    # ... and only the pepper's holder (the analytics service) finds it again.
    assert stored == anonymous_key(PEPPER, erased)
