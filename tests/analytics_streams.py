"""Generated event streams for the analytics projection tests (Hypothesis strategies).

A stream is a list of fact specs over a small universe (three members, two
campaigns, one event with three registrations), turned into parsed CloudEvents
with the per-entity sequences and times the producers would give them, in the
order generated (the "true" order).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from tests import events as ev
from usn_schemas.envelope import CloudEvent, parse_envelope
from usn_schemas.registry import TOPIC_CONTRACTS

MEMBERS = ["0b6f1c1e-8a52-4c1b-9a8d-3f2e1d4c5b6a", "1c7a2d2f-9b63-4d2c-8b9e-4a3f2e5d6c7b", "2d8b3e3a-0c74-4e3d-9caf-5b4a3f6e7d8c"]
CAMPAIGNS = ["c-2026-hh", "c-2026-tnm"]
EVENT = "3f9c2d4e-6b1a-4c8e-9f2d-1a2b3c4d5e6f"
REGISTRATIONS = ["7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6", "8e2f3a4b-5c6d-4e7f-8a81-92a3b4c5d6e7", "9f3a4b5c-6d7e-4f8a-9b92-a3b4c5d6e7f8"]
BASE = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)

member = st.sampled_from(MEMBERS)
campaign = st.sampled_from(CAMPAIGNS)
spec = st.one_of(
    st.tuples(st.just("registered"), member),
    st.tuples(st.just("updated"), member, st.sampled_from(["HH", "TNM", "HS"])),
    st.tuples(st.just("erased"), member),
    st.tuples(st.just("consent"), member, st.sampled_from(["given", "withdrawn"])),
    st.tuples(st.just("campaign"), campaign),
    st.tuples(st.just("status"), campaign, st.sampled_from(["sending", "done"]), st.integers(0, 9)),
    st.tuples(st.just("sent"), campaign, member),
    st.tuples(st.just("opened"), campaign, member),
    st.tuples(st.just("clicked"), campaign, member),
    st.tuples(st.just("volunteer"), member, st.sampled_from(["mentor", "guest-lecture"]), st.booleans()),
    st.tuples(st.just("event"), st.sampled_from(["published", "updated", "cancelled"])),
    st.tuples(
        st.just("registration"),
        st.integers(0, 2),
        st.sampled_from(["registered", "waitlisted", "offered", "expired", "cancelled", "attended"]),
    ),
    st.tuples(st.just("evu"), st.integers(0, 2), st.sampled_from(["100", "200"])),
)
streams = st.lists(spec, min_size=1, max_size=40)


def _one(i: int, s: tuple[Any, ...]) -> tuple[str, dict[str, Any]]:
    at = (BASE + timedelta(seconds=i)).isoformat()
    seq = i + 1
    kind = s[0]
    if kind == "registered":
        return "member-registered", ev.member_registered(s[1], time=at, student_number="100" + s[1][:3])
    if kind == "updated":
        return "member-updated", ev.member_updated(s[1], at, faculty=s[2], year=2020 + i % 5)
    if kind == "erased":
        return "member-erased", ev.member_erased(s[1])
    if kind == "consent":
        return f"consent-{s[2]}", ev.consent_fact(s[1], seq, s[2])
    if kind == "campaign":
        return "campaigns", ev.campaign(s[1])
    if kind == "status":
        return "campaign-status", ev.campaign_status(s[1], s[2], at, sent=s[3], skipped={"no-consent": i % 3})
    if kind == "sent":
        return "newsletter-sent", ev.newsletter_sent(s[1], s[2], sent_at=at)
    if kind in ("opened", "clicked"):
        return f"email-{kind}", ev.email_engagement(kind, s[1], s[2], at)
    if kind == "volunteer":
        topic = "volunteer-offered" if s[3] else "volunteer-withdrawn"
        return topic, ev.volunteer_fact(s[1], seq, s[2], offered=s[3])
    if kind == "event":
        return f"event-{s[1]}", ev.event_fact(EVENT, s[1], seq)
    if kind == "registration":
        fact = ev.registration_fact(EVENT, REGISTRATIONS[s[1]], MEMBERS[s[1]], s[2], seq)
        return fact["type"].removeprefix("no.usn.alumni.").removesuffix(".v1"), fact
    if kind == "evu":
        return "evu-enrolled", ev.evu_enrolled(f"EVU-{s[1]}", s[2])
    raise AssertionError(kind)


def build(specs: list[tuple[Any, ...]]) -> list[tuple[str, bytes, CloudEvent]]:
    """(topic, value, parsed event) per spec, in the true order."""
    out = []
    for i, s in enumerate(specs):
        topic, doc = _one(i, s)
        value = json.dumps(doc).encode()
        out.append((topic, value, parse_envelope(value, TOPIC_CONTRACTS[topic])))
    return out


@st.composite
def deliveries(draw: st.DrawFn, n: int) -> tuple[list[int], list[int]]:
    """A delivery of `n` events: indexes with duplicates, shuffled (any interleaving of partitions
    and topics), and the batch boundaries."""
    order = draw(st.permutations(range(n)))
    repeats = draw(st.lists(st.integers(0, n - 1), max_size=max(1, n // 3)))
    delivered = list(order)
    for r in repeats:
        delivered.insert(draw(st.integers(0, len(delivered))), r)
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(delivered) - 1)), max_size=6))))
    return delivered, cuts


def batches(items: list[Any], cuts: list[int]) -> list[list[Any]]:
    bounds = [0, *[c for c in cuts if 0 < c < len(items)], len(items)]
    return [items[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
