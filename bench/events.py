"""Events benchmark: one popular event, many clients registering distinct members at once.

Figures beside a baseline from the same run (issue 12: ≥ 300 registrations/s with
p99 ≤ 200 ms on this 2-core machine, capacity never exceeded):

1. The events service as its own process (`--replicas` processes in one consumer group,
   the way it scales out) on a fresh database; two published events with `--capacity`
   seats each (default 1,000), one for each loop below.
2. Closed loop (saturation): `--clients` (default 200) clients, each on its own keep-alive
   connection, back to back: first `GET /healthz` (the baseline: the same HTTP stack and
   load generator answering a trivial route), then `--registrations` (default 4,000)
   `POST /events/{id}/registrations` of distinct members (signed links made beforehand).
3. Open loop (latency): the same, sent at a fixed `--rate` (default 300/s) whatever the
   answers, at most `--clients` in flight, on the second event. Little's law: 200
   closed-loop clients at 300/s wait 670 ms on average, so the p99 target only means
   something at an offered rate (bench/load.py).
4. For each event the database must hold exactly `capacity` seats and the rest on the
   waiting list, the answers' waiting-list positions must be 1…n, and the outbox must
   drain (every fact published). Peak RSS of the service (all its processes).

The load comes from vegeta (built by `bench/run` into .run/cache) or, without it or with
`--generator httpx`, from Python clients in this process. Run through `bench/run events`
(it starts a dedicated broker and PostgreSQL cluster).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from tests.events import event_definition
from tests.stack import ServiceProcess, Stack, membership_process, service_process

import load
from alumni_kit.auth import TokenSigner, issue_member_link, issue_staff_token, parse_keys
from alumni_kit.kafka import ensure_topics
from alumni_kit.topics import PLATFORM_TOPICS
from load import Loop, Outcome, Request
from mailer import CpuMeter
from membership_backfill import pct, rss_mb

ROOT = Path(__file__).resolve().parents[1]
SIGNING_KEYS = "bench:a-benchmark-signing-key-of-enough-length"
SIGNER = TokenSigner(parse_keys(SIGNING_KEYS))
TARGET_RATE, TARGET_P99_MS = 300, 200


async def peak_rss(pids: list[int], stop: asyncio.Event) -> float:
    """The most the service's processes held at once (summed over them), sampled every 0.1 s."""
    peak = 0.0
    while not stop.is_set():
        peak = max(peak, sum(rss_mb(pid) for pid in pids))
        await asyncio.sleep(0.1)
    return max(peak, sum(rss_mb(pid) for pid in pids))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def busy(pids: list[int], seconds: float = 1) -> float:
    """Cores the service's processes used over the next `seconds`."""
    before = sum(cpu_seconds(pid) for pid in pids)
    await asyncio.sleep(seconds)
    return (sum(cpu_seconds(pid) for pid in pids) - before) / seconds


async def settled(pids: list[int], idle: float, limit: float = 180) -> float:
    """Seconds until the service is back to its `idle` use of the CPU (within 5 % of a core):
    what one loop left behind (the confirmation mails of the seats, their QR codes) must
    not be measured in the next."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    while loop.time() - began < limit and await busy(pids) > idle + 0.05:
        pass
    return loop.time() - began


def cpu_line(meter: CpuMeter, registrations: int) -> str:
    """Cores in use during the registrations and CPU ms per registration, per process (group):
    on a shared machine the service's ms per registration say what one core of it can do."""
    labels = [label for label in meter.used if label != "machine"]
    per = ", ".join(f"{label} {meter.used[label] / registrations * 1000:.2f}" for label in labels)
    cores = ", ".join(f"{label} {meter.cores[label]:.2f}" for label in labels)
    return f"    CPU ms per registration: {per}; cores in use: {cores}, machine {meter.cores['machine']:.2f}"


def line(name: str, outcome: Outcome) -> str:
    rate = rate_of(outcome)
    return (
        f"  {name:<32} {len(outcome.latencies):>6} in {outcome.seconds:6.2f} s  {rate:8.1f}/s  "
        f"p50 {pct(outcome.latencies, 50):7.1f} ms  p99 {pct(outcome.latencies, 99):7.1f} ms  "
        f"statuses {outcome.statuses}"
    )


async def publish_event(url: str, capacity: int) -> str:
    staff = {"Authorization": f"Bearer {issue_staff_token(SIGNER, 'bench', 'comms', None, 3600)}"}
    body = event_definition(capacity=capacity, registration_deadline=None)
    body["starts_at"] = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    body["ends_at"] = (datetime.now(UTC) + timedelta(days=30, hours=2)).isoformat()
    async with httpx.AsyncClient(base_url=url, headers=staff) as http:
        event_id = str((await http.post("/events", json=body)).json()["event_id"])
        assert (await http.post(f"/events/{event_id}/publish")).status_code == 200
    return event_id


def registrations(urls: list[str], event_id: str, count: int) -> list[Request]:
    """`count` registrations of distinct members, spread over the replicas in turn."""
    return [
        Request(
            "POST",
            f"{urls[i % len(urls)]}/events/{event_id}/registrations",
            {"member_token": issue_member_link(SIGNER, str(uuid.uuid4()), "events", 3600, secrets.token_urlsafe(12))},
        )
        for i in range(count)
    ]


def trivial(urls: list[str], count: int) -> list[Request]:
    return [Request("GET", f"{urls[i % len(urls)]}/healthz") for i in range(count)]


async def check_event(conn: asyncpg.Connection, event_id: str, outcome: Outcome, capacity: int) -> list[str]:
    """What is wrong with the event after its run (nothing: an empty list)."""
    n = len(outcome.latencies)
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM registrations WHERE event_id = $1 GROUP BY status", event_id
    )
    held = {r["status"]: r["n"] for r in rows}
    wrong = []
    if held.get("registered") != min(capacity, n) or held.get("waitlisted", 0) != max(n - capacity, 0):
        wrong.append(f"seats {held} for capacity {capacity}")
    if outcome.statuses != {201: n}:
        wrong.append(f"answers {outcome.statuses} {outcome.errors or ''}".rstrip())
    placed = [json.loads(b) for b in outcome.bodies if b]
    positions = sorted(p["waitlist_position"] for p in placed if p.get("status") == "waitlisted")
    if positions != list(range(1, max(n - capacity, 0) + 1)):
        wrong.append(f"waiting-list positions are not 1…{n - capacity}")
    return wrong


async def drained_after(conn: asyncpg.Connection) -> float:
    began = asyncio.get_running_loop().time()
    while await conn.fetchval("SELECT count(*) FROM outbox"):  # noqa: ASYNC110 - another process's table
        await asyncio.sleep(0.05)
    return asyncio.get_running_loop().time() - began


def rate_of(outcome: Outcome) -> float:
    return len(outcome.latencies) / outcome.seconds if outcome.seconds else 0.0


def verdict(saturation: Outcome, offered: Outcome, rate: int) -> str:
    """Met: the closed loop reaches the target rate and the open loop keeps up with it within the p99."""
    keeps_up = rate >= TARGET_RATE and rate_of(offered) >= 0.97 * rate  # a 3 % ramp-up and tail allowance
    fast = pct(offered.latencies, 99) <= TARGET_P99_MS
    return "met" if rate_of(saturation) >= TARGET_RATE and keeps_up and fast else "NOT met"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--registrations", type=int, default=4000)
    parser.add_argument("--capacity", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rate", type=int, default=TARGET_RATE, help="offered registrations/s of the open loop")
    parser.add_argument("--replicas", type=int, default=1, help="service processes in one consumer group")
    parser.add_argument("--generator", choices=["vegeta", "httpx"], default=None, help="default: vegeta if built")
    args = parser.parse_args()
    if args.generator == "httpx":
        os.environ.pop("BENCH_VEGETA", None)
    elif args.generator == "vegeta" and load.vegeta_binary() is None:
        parser.error("vegeta is not built (bench/run builds it into .run/cache and sets BENCH_VEGETA)")

    stack = Stack.from_env()
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    await ensure_topics(stack.bootstrap, PLATFORM_TOPICS, prefix)
    db = await stack.create_database(owner="events")
    log = ROOT / ".run" / "bench" / "logs" / "events-bench.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    # The confirmation mails are sealed with the member's key from membership, as in production:
    # without it the mail stage would retry every batch (and draw its QR codes again) for ever.
    keys = membership_process(stack, await stack.create_database(owner="membership"), prefix, f"m-{db}", log)
    keys.env.update(ALUMNI_SIGNING_KEYS=SIGNING_KEYS, MEMBERSHIP_LOG_LEVEL="WARNING")
    keys.env["MEMBERSHIP_KEY_CLIENTS"] = '["events"]'
    services: list[ServiceProcess] = [
        service_process(stack, "events", db, prefix, f"events-{db}", log) for _ in range(args.replicas)
    ]
    for service in services:
        service.env.update(ALUMNI_SIGNING_KEYS=SIGNING_KEYS, EVENTS_LOG_LEVEL="WARNING")
        service.env["ALUMNI_MEMBERSHIP_URL"] = keys.url
        service.requires.append(keys)
        service.start()
    try:
        for service in services:
            await service.wait_ready()
        urls = [s.url for s in services]
        pids = [s.proc.pid for s in services if s.proc is not None]
        n, seats = args.registrations, args.capacity
        closed_event, open_event = await publish_event(urls[0], seats), await publish_event(urls[0], seats)
        closed_load, open_load = registrations(urls, closed_event, n), registrations(urls, open_event, n)
        closed, opened = Loop(args.clients), Loop(args.clients, args.rate)
        print(
            f"events benchmark: {n:,} registrations for {seats:,} seats per loop, {args.replicas} replica(s), "
            f"load from {load.generator_name()}"
        )
        idle = await busy(pids, 3)
        stop = asyncio.Event()
        rss = asyncio.create_task(peak_rss(pids, stop))
        results: dict[str, tuple[Outcome, Outcome]] = {}
        for loop, event_load in ((closed, closed_load), (opened, open_load)):
            waited = await settled(pids, idle)
            baseline = await load.run(trivial(urls, n), loop)
            meter = CpuMeter(stack, {f"events-{i + 1}": pid for i, pid in enumerate(pids)})
            meter.start()
            registered = await load.run(event_load, loop)
            meter.stop()
            results[loop.describe()] = (baseline, registered)
            print(f"{loop.describe()} (after {waited:.0f} s for the service to be idle):")
            print(line("baseline: GET /healthz", baseline))
            print(line("POST /events/{id}/registrations", registered))
            print(cpu_line(meter, n))
        idle_after = await settled(pids, idle)
        conn = await asyncpg.connect(stack.service_dsn("events", db))
        try:
            drained = await drained_after(conn)
            wrong = {
                "closed": await check_event(conn, closed_event, results[closed.describe()][1], seats),
                "open": await check_event(conn, open_event, results[opened.describe()][1], seats),
            }
        finally:
            await conn.close()
        stop.set()
        peak = await rss

        for name, problems in wrong.items():
            print(f"{name}-loop event: {'; '.join(problems) if problems else 'capacity exact, positions 1…n'}")
        print(f"outbox drained {drained:.2f} s after the last answer; peak RSS of the service {peak:.0f} MB")
        print(
            f"the service was busy {idle_after:.0f} s more after the last answer (its mails, with their QR codes); "
            f"idle it uses {idle * 100:.0f} % of a core"
        )
        saturation, offered = results[closed.describe()][1], results[opened.describe()][1]
        print(
            f"saturation {rate_of(saturation):.1f}/s (closed loop: its latency is {args.clients} in flight "
            f"÷ that rate, Little's law); at {args.rate}/s offered: {rate_of(offered):.1f}/s, "
            f"p99 {pct(offered.latencies, 99):.1f} ms"
        )
        print(
            f"target ≥ {TARGET_RATE}/s (closed loop) with p99 ≤ {TARGET_P99_MS} ms (open loop at {args.rate}/s): "
            f"{verdict(saturation, offered, args.rate)}"
        )
        return 1 if any(wrong.values()) else 0
    finally:
        for service in services:
            service.stop()
        keys.stop()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
