"""Membership backfill benchmark (docs/architecture.md §6), figures beside baselines from the same run.

1. Publishes N synthetic `graduated` events (default 227,000) with a plain producer.
2. Baseline A: Kafka's own consumer (`ConsumerPerformance`, same jars) reading the topic.
3. Baseline B: a raw PostgreSQL COPY of the same member and programme rows.
4. The membership service, as its own process on a fresh database, consumes the
   whole topic: time until the last event's effects are committed, and its peak RSS.
5. Steady load: 100 events/s of new graduates; latency from publish to the member
   row being visible (polled every 5 ms), p50/p99.

Run through `bench/run` (it starts a dedicated broker and PostgreSQL cluster).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from tests.stack import ServiceProcess, Stack, membership_process

from alumni_kit.kafka import ensure_topics
from alumni_kit.topics import PLATFORM_TOPICS
from usn_tools.fs_demo import graduation_events
from usn_tools.publish import publish_events

ROOT = Path(__file__).resolve().parents[1]
ELIGIBLE = {"bachelor", "master", "phd", "evu"}
STALL_SECONDS = 60


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(match.group(1)) / 1024 if match else 0.0


def consumer_performance_fields(bootstrap: str, topic: str, messages: int) -> dict[str, str]:
    """What Kafka's own consumer (ConsumerPerformance) reports for reading `messages` records of `topic`:
    its CSV summary as a dict (`nMsg.sec`, `fetch.time.ms`, ...)."""
    out = subprocess.run(
        [
            str(ROOT / "scripts" / "kafka"),
            "tool",
            "org.apache.kafka.tools.ConsumerPerformance",
            "--bootstrap-server",
            bootstrap,
            "--topic",
            topic,
            "--messages",
            str(messages),
            "--group",
            f"perf-{uuid.uuid4().hex[:6]}",
            "--timeout",
            "120000",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    header, values = [line for line in out.splitlines() if line.strip()][-2:]
    return dict(zip([h.strip() for h in header.split(",")], [v.strip() for v in values.split(",")], strict=False))


def consumer_performance(bootstrap: str, topic: str, messages: int) -> float:
    """Kafka's own consumer: seconds to read `messages` records (ConsumerPerformance)."""
    return messages / float(consumer_performance_fields(bootstrap, topic, messages)["nMsg.sec"])


def member_rows(events: list[dict[str, Any]]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    members: dict[str, tuple[Any, ...]] = {}
    programmes = []
    for e in events:
        d = e["data"]
        if d["degree_level"] not in ELIGIBLE:
            continue
        mid = members.setdefault(
            d["student_number"],
            (uuid.uuid4(), d["student_number"], d["given_name"], d["family_name"], d.get("email"), d.get("phone")),
        )[0]
        programmes.append(
            (
                mid,
                d["programme_code"],
                d["degree_level"],
                d.get("programme_name"),
                d["faculty"],
                d.get("campus"),
                date.fromisoformat(d["graduation_date"]),
                e["id"],
            )
        )
    return list(members.values()), programmes


async def copy_baseline(dsn: str, events: list[dict[str, Any]]) -> float:
    """Seconds for a raw COPY of the same member and programme rows into bare tables."""
    members, programmes = member_rows(events)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("""
            CREATE TABLE m (member_id uuid PRIMARY KEY, student_number text UNIQUE, given_name text,
                            family_name text, email text, phone text);
            CREATE TABLE p (member_id uuid, programme_code text, degree_level text, programme_name text,
                            faculty text, campus text, graduation_date date, source_event_id text,
                            PRIMARY KEY (member_id, programme_code, degree_level));""")
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table("m", records=members)
            await conn.copy_records_to_table("p", records=programmes)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def backfill(services: list[ServiceProcess], dsn: str, total_events: int, started: float) -> tuple[float, float]:
    """Start the replicas on the full topic; seconds until every event is committed, and peak RSS (MB)."""
    for service in services:
        service.start()
    conn = await asyncpg.connect(dsn)
    peak = 0.0
    last_done, last_progress = -1, time.perf_counter()
    try:
        while True:
            peak = max([peak, *(rss_mb(s.proc.pid) for s in services if s.proc)])
            try:
                done = await conn.fetchval("SELECT count(*) FROM inbox")
            except asyncpg.UndefinedTableError:
                done = 0
            if done >= total_events:
                return time.perf_counter() - started, peak
            if done != last_done:
                last_done, last_progress = done, time.perf_counter()
            if time.perf_counter() - last_progress > STALL_SECONDS:
                raise RuntimeError(f"no progress for {STALL_SECONDS} s at {done} of {total_events} events")
            for s in services:
                assert s.proc is not None
                assert s.proc.poll() is None, s.tail()
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def outbox_drained(dsn: str, started: float) -> float:
    """Seconds since `started` until the relay has published every outgoing fact."""
    conn = await asyncpg.connect(dsn)
    try:
        while True:
            if not await conn.fetchval("SELECT count(*) FROM outbox"):
                return time.perf_counter() - started
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def steady_latency(bootstrap: str, topic: str, dsn: str, rate: int, seconds: int) -> list[float]:
    """Publish `rate` new graduates a second; milliseconds from send to the row being visible."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    conn = await asyncpg.connect(dsn)
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    template = next(e for e in graduation_events(10, seed=99) if e["data"]["degree_level"] == "bachelor")

    async def watch() -> None:
        while len(latencies) < rate * seconds:
            pending = list(sent_at)
            if pending:
                rows = await conn.fetch("SELECT student_number FROM members WHERE student_number = ANY($1)", pending)
                now = time.perf_counter()
                for r in rows:
                    latencies.append((now - sent_at.pop(r[0])) * 1000)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    try:
        start = time.perf_counter()
        for i in range(rate * seconds):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            sn = f"L{i:07d}"
            event = {
                **template,
                "id": str(uuid.uuid4()),
                "subject": sn,
                "data": {**template["data"], "student_number": sn},
            }
            sent_at[sn] = time.perf_counter()
            await producer.send(topic, key=sn.encode(), value=json.dumps(event).encode())
        await asyncio.wait_for(watcher, timeout=60)
    finally:
        await producer.stop()
        await conn.close()
    return latencies


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def steady_on_fresh_service(stack: Stack, count: int, seconds: int) -> list[float]:
    """Steady-load latency on an empty database and topic, away from any backfill's after-effects
    (autovacuum of the freshly loaded tables competes for the same two cores)."""
    prefix = f"steady{uuid.uuid4().hex[:6]}."
    await ensure_topics(stack.bootstrap, PLATFORM_TOPICS, prefix)
    db = await stack.create_database(owner="membership")
    services = replicas(stack, db, prefix, count)
    try:
        for s in services:
            s.start()
        for s in services:
            await s.wait_ready()
        return await steady_latency(
            stack.bootstrap, prefix + "graduated", stack.service_dsn("membership", db), 100, seconds
        )
    finally:
        for s in services:
            s.stop()


def replicas(stack: Stack, db: str, prefix: str, count: int) -> list[ServiceProcess]:
    """`count` membership processes in one consumer group, as replicas are deployed."""
    out = []
    for i in range(count):
        log = ROOT / ".run" / "bench" / "logs" / f"membership-bench-{i}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        # Each run's own group reads the topic from the start.
        service = membership_process(stack, db, prefix, f"membership-{db}", log)
        service.env["MEMBERSHIP_LOG_LEVEL"] = "WARNING"
        out.append(service)
    return out


@dataclass
class Run:
    """One backfill with a given number of membership processes."""

    processes: int
    backfill_s: float = 0.0
    drained_s: float = 0.0
    peak_mb: float = 0.0
    after_backfill_ms: list[float] = field(default_factory=list)


async def run_membership(stack: Stack, prefix: str, n: int, run: Run, steady_seconds: int) -> None:
    """Backfill the topic with `run.processes` replicas on a fresh database, then a steady load."""
    db = await stack.create_database(owner="membership")
    dsn = stack.service_dsn("membership", db)
    services = replicas(stack, db, prefix, run.processes)
    print(f"membership ({run.processes} process(es)): backfill …", flush=True)
    try:
        started = time.perf_counter()
        run.backfill_s, run.peak_mb = await backfill(services, dsn, n, started)
        run.drained_s = await outbox_drained(dsn, started)
        for s in services:
            await s.wait_ready()
        print(f"  steady 100 events/s for {steady_seconds} s right after the backfill …", flush=True)
        run.after_backfill_ms = await steady_latency(stack.bootstrap, prefix + "graduated", dsn, 100, steady_seconds)
        run.peak_mb = max([run.peak_mb, *(rss_mb(s.proc.pid) for s in services if s.proc)])
    finally:
        for s in services:
            s.stop()


def latency_line(label: str, values: list[float]) -> str:
    return (
        f"    {label:36} {len(values)} events: p50 {pct(values, 50):.0f} ms, "
        f"p99 {pct(values, 99):.0f} ms, max {max(values):.0f} ms"
    )


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=227_000)
    parser.add_argument("--steady-seconds", type=int, default=30)
    parser.add_argument(
        "--replicas",
        default="1,2",
        help="membership processes in one consumer group, one backfill per value (default 1,2)",
    )
    args = parser.parse_args()
    stack = Stack.from_env()
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    await ensure_topics(stack.bootstrap, PLATFORM_TOPICS, prefix)

    print(f"generating {args.events:,} graduated events …", flush=True)
    events = list(graduation_events(args.events, seed=227))
    n = len(events)
    t0 = time.perf_counter()
    await publish_events(stack.bootstrap, prefix + "graduated", events, total=n, progress=sys.stderr.isatty())
    publish_s = time.perf_counter() - t0
    print("baseline A: Kafka ConsumerPerformance …", flush=True)
    kafka_s = consumer_performance(stack.bootstrap, prefix + "graduated", n)
    print("baseline B: PostgreSQL COPY …", flush=True)
    copy_s = await copy_baseline(stack.admin_dsn(await stack.create_database(owner="membership")), events)
    print(f"membership: steady 100 events/s for {args.steady_seconds} s on a fresh database …", flush=True)
    fresh_lat = await steady_on_fresh_service(stack, 1, args.steady_seconds)
    runs = [Run(int(r)) for r in args.replicas.split(",")]
    for run in runs:
        await run_membership(stack, prefix, n, run, args.steady_seconds)

    print(f"\nMembership backfill benchmark — {n:,} graduated events, {os.cpu_count()} cores")
    print(f"  {'what':52} {'seconds':>8} {'events/s':>10}")
    print(f"  {'publish (plain producer, acks=all)':52} {publish_s:8.1f} {n / publish_s:10,.0f}")
    print(f"  {'baseline A: Kafka ConsumerPerformance':52} {kafka_s:8.1f} {n / kafka_s:10,.0f}")
    print(f"  {'baseline B: PostgreSQL COPY of the member rows':52} {copy_s:8.1f} {n / copy_s:10,.0f}")
    for run in runs:
        what = f"membership ×{run.processes}: start → last event committed"
        print(f"  {what:52} {run.backfill_s:8.1f} {n / run.backfill_s:10,.0f}   target ≤ 60 s, aim ≤ 30 s")
        what = f"membership ×{run.processes}: start → last outgoing fact out"
        print(f"  {what:52} {run.drained_s:8.1f} {n / run.drained_s:10,.0f}")
    print(
        "  peak RSS of a membership process: "
        + ", ".join(f"×{r.processes} {r.peak_mb:.0f} MB" for r in runs)
        + "   target ≤ 200 MB"
    )
    print("  publish → member row visible at a steady 100 events/s (target p99 ≤ 250 ms):")
    print(latency_line("×1, fresh database", fresh_lat))
    for run in runs:
        print(latency_line(f"×{run.processes}, right after the backfill", run.after_backfill_ms))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
