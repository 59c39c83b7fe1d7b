"""Analytics rebuild benchmark (issue 13), figures beside Kafka's own consumer in the same run.

1. Publishes N events (default 1,000,000) spread over the topics analytics consumes,
   in the proportions of a busy year (sends, opens, registrations, consent facts,
   member snapshots, ...), with a plain producer.
2. Baseline: Kafka's own consumer (`ConsumerPerformance`, same jars) reading every
   one of those topics (the sum of its per-topic times).
3. `alumni-analytics rebuild` as its own process on a fresh database: seconds from
   start until the new generation is live, events/s, peak RSS.

Run through `bench/run analytics` (it starts a dedicated broker and PostgreSQL cluster).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from tests import events as ev
from tests.stack import Stack

from alumni_kit.kafka import ensure_topics
from alumni_kit.topics import PLATFORM_TOPICS
from membership_backfill import consumer_performance_fields, rss_mb

# Share of each kind of fact in the stream (sums to 1).
MIX = {
    "newsletter-sent": 0.38,
    "email-opened": 0.17,
    "email-clicked": 0.05,
    "event-registered": 0.10,
    "event-attended": 0.06,
    "event-waitlisted": 0.03,
    "consent-given": 0.06,
    "consent-withdrawn": 0.01,
    "member-registered": 0.05,
    "member-updated": 0.04,
    "volunteer-offered": 0.02,
    "evu-enrolled": 0.01,
    "campaign-status": 0.01,
    "event-published": 0.005,
    "member-erased": 0.005,
}


def stream(n: int, seed: int = 1) -> Iterator[tuple[str, dict[str, Any]]]:
    """`n` (topic, event) pairs over a universe sized to the stream."""
    rng = random.Random(seed)
    members = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(max(100, int(n * 0.05)))]
    campaigns = [f"c-{i:04d}" for i in range(max(5, n // 5000))]
    events = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(max(5, n // 2000))]
    topics, weights = list(MIX), list(MIX.values())
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(n):
        topic = rng.choices(topics, weights)[0]
        m, c, e = rng.choice(members), rng.choice(campaigns), rng.choice(events)
        at = (base + timedelta(seconds=i * 30)).isoformat()
        seq = i + 1
        if topic == "newsletter-sent":
            yield topic, ev.newsletter_sent(c, m, sent_at=at)
        elif topic in ("email-opened", "email-clicked"):
            yield topic, ev.email_engagement(topic.removeprefix("email-"), c, m, at)
        elif topic.startswith("event-") and topic != "event-published":
            status = {"event-registered": "registered", "event-attended": "attended", "event-waitlisted": "waitlisted"}
            registration = str(uuid.uuid5(uuid.NAMESPACE_URL, e + m))
            yield topic, ev.registration_fact(e, registration, m, status[topic], seq)
        elif topic == "event-published":
            yield topic, ev.event_fact(e, "published", seq)
        elif topic in ("consent-given", "consent-withdrawn"):
            yield topic, ev.consent_fact(m, seq, topic.removeprefix("consent-"))
        elif topic == "member-registered":
            yield topic, ev.member_registered(m, time=at)
        elif topic == "member-updated":
            yield topic, ev.member_updated(m, at, faculty=rng.choice(["HH", "TNM", "HS", "HIU"]))
        elif topic == "volunteer-offered":
            yield topic, ev.volunteer_fact(m, seq, rng.choice(["mentor", "guest-lecture", "thesis-topics"]))
        elif topic == "evu-enrolled":
            yield topic, ev.evu_enrolled(f"EVU-{i}", str(100000 + rng.randrange(50000)))
        elif topic == "campaign-status":
            yield topic, ev.campaign_status(c, "sending", at, sent=i % 1000, skipped={"no-consent": i % 7})
        else:
            yield topic, ev.member_erased(m)


def kafka_fetch_seconds(bootstrap: str, topic: str, messages: int) -> float:
    """Kafka's own consumer (ConsumerPerformance): seconds spent fetching `messages` records of
    `topic`, without its group join (which a rebuild, reading without a group, does not have)."""
    return float(consumer_performance_fields(bootstrap, topic, messages)["fetch.time.ms"]) / 1000


async def publish(bootstrap: str, prefix: str, n: int) -> Counter[str]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024, compression_type=None
    )
    await producer.start()
    counts: Counter[str] = Counter()
    try:
        pending = []
        for topic, event in stream(n):
            value = json.dumps(event, ensure_ascii=False).encode()
            pending.append(await producer.send(prefix + topic, key=str(event["subject"]).encode(), value=value))
            counts[topic] += 1
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return counts


def rebuild(stack: Stack, db: str, prefix: str, batch: int) -> tuple[float, float, int]:
    """Seconds, peak RSS (MB) and exit code of `alumni-analytics rebuild` as its own process."""
    env = {
        **os.environ,
        "ANALYTICS_KAFKA_BOOTSTRAP": stack.bootstrap,
        "ANALYTICS_DATABASE_URL": stack.service_dsn("analytics", db),
        "ALUMNI_TOPIC_PREFIX": prefix,
        "ANALYTICS_REBUILD_BATCH_RECORDS": str(batch),
    }
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "analytics", "rebuild", "--no-progress"], env=env)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, rss_mb(proc.pid))
        time.sleep(0.1)
    return time.monotonic() - started, peak, proc.returncode


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5000, help="ANALYTICS_REBUILD_BATCH_RECORDS")
    args = parser.parse_args()
    stack = Stack.from_env()
    prefix = f"b{uuid.uuid4().hex[:8]}."
    await ensure_topics(stack.bootstrap, PLATFORM_TOPICS, prefix)
    started = time.monotonic()
    counts = await publish(stack.bootstrap, prefix, args.events)
    published = time.monotonic() - started
    print(f"published {args.events:,} events over {len(counts)} topics in {published:.1f} s", flush=True)

    kafka_seconds = sum(kafka_fetch_seconds(stack.bootstrap, prefix + t, n) for t, n in sorted(counts.items()))
    print(f"baseline: Kafka's ConsumerPerformance fetching the same topics: {kafka_seconds:.1f} s", flush=True)

    db = await stack.create_database(owner="analytics")
    seconds, peak, code = rebuild(stack, db, prefix, args.batch)
    if code != 0:
        print(f"rebuild failed (exit {code})", file=sys.stderr)
        return 1
    print()
    print(f"events: {args.events:,} ({', '.join(f'{t} {n:,}' for t, n in counts.most_common())})")
    print(f"  Kafka's own consumer (ConsumerPerformance): {args.events / kafka_seconds:>10,.0f} events/s")
    print(
        f"  alumni-analytics rebuild:                   {args.events / seconds:>10,.0f} events/s"
        f"  ({seconds:.1f} s, target >= 20,000/s)"
    )
    print(f"  peak RSS of the rebuild process: {peak:.0f} MB (target <= 300 MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
