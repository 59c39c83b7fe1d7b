"""Generated event streams for the analytics projection tests (Hypothesis strategies).

A stream is a list of fact specs over a small universe (three members, two
campaigns, one event with three registrations), turned into parsed CloudEvents
with the per-entity sequences and times the producers would give them, in the
order generated (the "true" order).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from hypothesis import strategies as st

from analytics.generations import checked, live_generation
from analytics.rebuild import consumed_partitions
from analytics.rules import TABLES, Projection, Weights
from analytics.topics import CONSUMED
from tests import events as ev
from tests.stack import ANALYTICS_PEPPER, ServiceProcess, consumer_lags
from usn_schemas.envelope import CloudEvent, parse_envelope
from usn_schemas.registry import TOPIC_CONTRACTS

# The service's pepper in the tests (tests/conftest.py): the recomputation keys an erasure alike.
PEPPER = ANALYTICS_PEPPER

MEMBERS = [
    "0b6f1c1e-8a52-4c1b-9a8d-3f2e1d4c5b6a",
    "1c7a2d2f-9b63-4d2c-8b9e-4a3f2e5d6c7b",
    "2d8b3e3a-0c74-4e3d-9caf-5b4a3f6e7d8c",
]
CAMPAIGNS = ["c-2026-hh", "c-2026-tnm"]
EVENT = "3f9c2d4e-6b1a-4c8e-9f2d-1a2b3c4d5e6f"
REGISTRATIONS = [
    "7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6",
    "8e2f3a4b-5c6d-4e7f-8a81-92a3b4c5d6e7",
    "9f3a4b5c-6d7e-4f8a-9b92-a3b4c5d6e7f8",
]
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
    return [items[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def random_specs(n: int, seed: int) -> list[tuple[Any, ...]]:
    """`n` fact specs drawn reproducibly (for the real-broker tests, where Hypothesis would be slow)."""
    rng = random.Random(seed)
    kinds: list[Callable[[], tuple[Any, ...]]] = [
        lambda: ("registered", rng.choice(MEMBERS)),
        lambda: ("updated", rng.choice(MEMBERS), rng.choice(["HH", "TNM", "HS"])),
        lambda: ("consent", rng.choice(MEMBERS), rng.choice(["given", "withdrawn"])),
        lambda: ("campaign", rng.choice(CAMPAIGNS)),
        lambda: ("status", rng.choice(CAMPAIGNS), rng.choice(["sending", "done"]), rng.randint(0, 9)),
        lambda: ("sent", rng.choice(CAMPAIGNS), rng.choice(MEMBERS)),
        lambda: ("opened", rng.choice(CAMPAIGNS), rng.choice(MEMBERS)),
        lambda: ("clicked", rng.choice(CAMPAIGNS), rng.choice(MEMBERS)),
        lambda: ("volunteer", rng.choice(MEMBERS), rng.choice(["mentor", "guest-lecture"]), rng.random() < 0.7),
        lambda: ("event", rng.choice(["published", "updated", "cancelled"])),
        lambda: ("registration", rng.randint(0, 2), rng.choice(["registered", "waitlisted", "attended"])),
        lambda: ("evu", rng.randint(0, 50), rng.choice(["100", "200", "300"])),
    ]
    specs = [rng.choice(kinds)() for _ in range(n)]
    specs.insert(n * 2 // 3, ("erased", MEMBERS[2]))  # one erasure, with facts of hers after it
    return specs


def recomputed(built: list[tuple[str, bytes, CloudEvent]], weights: Weights | None = None) -> dict[str, dict[Any, Any]]:
    once = Projection(pepper=PEPPER) if weights is None else Projection(pepper=PEPPER, weights=weights)
    for _, _, event in built:
        once.apply([event])
    return once.snapshot()


async def stored(conn: asyncpg.Connection, name: str) -> dict[str, dict[Any, Any]]:
    """Every row of generation `name`, as `Projection.snapshot` gives them."""
    out: dict[str, dict[Any, Any]] = {}
    for table, spec in TABLES.items():
        rows = {}
        for r in await conn.fetch(f"SELECT * FROM {checked(name)}.{table}"):
            row = {c: r[c] for c in spec.columns}
            for c in spec.json_columns:
                row[c] = json.loads(row[c])
            rows[spec.key_of(row)] = row
        out[table] = rows
    out["erased"] = {(r["member_key"],): dict(r) for r in await conn.fetch(f"SELECT * FROM {name}.erased")}
    return out


async def publish_built(
    bootstrap: str, prefix: str, built: list[tuple[str, bytes, CloudEvent]], twice: int = 0
) -> None:
    """Publish each event on its topic with a plain producer (key = subject); every `twice`-th one twice."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = []
        for i, (topic, value, event) in enumerate(built):
            for _ in range(2 if twice and i % twice == 0 else 1):
                futures.append(await producer.send(prefix + topic, key=event.subject.encode(), value=value))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def end_offsets(bootstrap: str, prefix: str) -> dict[tuple[str, int], int]:
    parts = await consumed_partitions(bootstrap, prefix)
    assert parts, "no consumed topic exists"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return {(tp.topic, tp.partition): o for tp, o in (await consumer.end_offsets(parts)).items() if o > 0}
    finally:
        await consumer.stop()


async def wait_caught_up(conn: asyncpg.Connection, service: ServiceProcess, timeout: float = 90) -> str:
    """The live generation, once the analytics service's consumers committed the end of every
    consumed topic: the kit commits only what it applied (or skipped or dead-lettered)."""
    env = service.env
    deadline = time.monotonic() + timeout
    while True:
        lags = await consumer_lags(
            env["ANALYTICS_KAFKA_BOOTSTRAP"], env["ANALYTICS_GROUP_ID"], env["ALUMNI_TOPIC_PREFIX"]
        )
        if len(lags) == len(CONSUMED) and not any(lags.values()):
            return await live_generation(conn)
        assert time.monotonic() < deadline, f"not caught up: {lags}"
        await asyncio.sleep(0.3)
