"""Events benchmark: one popular event, many clients registering distinct members at once.

Figures beside a baseline from the same run (issue 12: ≥ 300 registrations/s with
p99 ≤ 200 ms on this 2-core machine, capacity never exceeded):

1. The events service as its own process on a fresh database; one published event with
   `--capacity` seats (default 1,000).
2. Baseline: the same HTTP stack (the same process, uvicorn and FastAPI) answering a
   trivial route (`/healthz`) to the same number of requests from the same clients.
3. `--clients` (default 200) concurrent clients, each on its own keep-alive connection,
   post `--registrations` (default 4,000) registrations of distinct members (signed
   links made beforehand) back to back: registrations/s, p50/p99 latency, peak RSS of
   the service. Then the database must hold exactly `capacity` seats and the rest on the
   waiting list with positions 1…n, and the outbox must drain (every fact published).

Run through `bench/run events` (it starts a dedicated broker and PostgreSQL cluster).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from tests.events import event_definition
from tests.stack import ServiceProcess, Stack, service_process

from alumni_kit.auth import TokenSigner, issue_member_link, issue_staff_token, parse_keys
from alumni_kit.kafka import ensure_topics
from alumni_kit.topics import PLATFORM_TOPICS
from membership_backfill import pct, rss_mb

ROOT = Path(__file__).resolve().parents[1]
SIGNING_KEYS = "bench:a-benchmark-signing-key-of-enough-length"
SIGNER = TokenSigner(parse_keys(SIGNING_KEYS))
TARGET_RATE, TARGET_P99_MS = 300, 200


async def peak_rss(pid: int, stop: asyncio.Event) -> float:
    peak = 0.0
    while not stop.is_set():
        peak = max(peak, rss_mb(pid))
        await asyncio.sleep(0.1)
    return max(peak, rss_mb(pid))


async def load(
    clients: int, requests: list[Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]]
) -> tuple[float, list[float], dict[int, int]]:
    """Run `requests` from `clients` concurrent clients (closed loop): seconds, latencies (ms), statuses."""
    queue = list(reversed(requests))
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def client() -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(limits=limits, timeout=60) as http:
            while queue:
                send = queue.pop()
                began = time.perf_counter()
                answer = await send(http)
                latencies.append((time.perf_counter() - began) * 1000)
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - start, latencies, statuses


def line(name: str, seconds: float, latencies: list[float], statuses: dict[int, int]) -> str:
    rate = len(latencies) / seconds
    return (
        f"{name:<34} {len(latencies):>6} in {seconds:6.2f} s  {rate:8.1f}/s  "
        f"p50 {pct(latencies, 50):7.1f} ms  p99 {pct(latencies, 99):7.1f} ms  statuses {statuses}"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--registrations", type=int, default=4000)
    parser.add_argument("--capacity", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=200)
    args = parser.parse_args()

    stack = Stack.from_env()
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    await ensure_topics(stack.bootstrap, PLATFORM_TOPICS, prefix)
    db = await stack.create_database(owner="events")
    log = ROOT / ".run" / "bench" / "logs" / "events-bench.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    service: ServiceProcess = service_process(stack, "events", db, prefix, f"events-{db}", log)
    service.env.update(ALUMNI_SIGNING_KEYS=SIGNING_KEYS, EVENTS_LOG_LEVEL="WARNING")
    service.start()
    try:
        await service.wait_ready()
        assert service.proc is not None
        staff = {"Authorization": f"Bearer {issue_staff_token(SIGNER, 'bench', 'comms', None, 3600)}"}
        body = event_definition(capacity=args.capacity, registration_deadline=None)
        body["starts_at"] = (datetime.now(UTC) + timedelta(days=30)).isoformat()
        body["ends_at"] = (datetime.now(UTC) + timedelta(days=30, hours=2)).isoformat()
        async with httpx.AsyncClient(base_url=service.url, headers=staff) as http:
            event_id = (await http.post("/events", json=body)).json()["event_id"]
            assert (await http.post(f"/events/{event_id}/publish")).status_code == 200
        tokens = [
            issue_member_link(SIGNER, str(uuid.uuid4()), "events", 3600, secrets.token_urlsafe(12))
            for _ in range(args.registrations)
        ]
        url = f"{service.url}/events/{event_id}/registrations"

        def trivial(http: httpx.AsyncClient) -> Awaitable[httpx.Response]:
            return http.get(f"{service.url}/healthz")

        def register(token: str) -> Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]:
            return lambda http: http.post(url, json={"member_token": token})

        n, seats = args.registrations, args.capacity
        print(f"events benchmark: {n:,} registrations for {seats:,} seats, {args.clients} clients")
        base = await load(args.clients, [trivial] * args.registrations)
        stop = asyncio.Event()
        rss = asyncio.create_task(peak_rss(service.proc.pid, stop))
        seconds, latencies, statuses = await load(args.clients, [register(t) for t in tokens])
        drained_at = time.perf_counter()
        conn = await asyncpg.connect(stack.service_dsn("events", db))
        try:
            while await conn.fetchval("SELECT count(*) FROM outbox"):  # noqa: ASYNC110 - another process's table
                await asyncio.sleep(0.05)
            drained = time.perf_counter() - drained_at
            rows = await conn.fetch(
                "SELECT status, count(*) AS n FROM registrations WHERE event_id = $1 GROUP BY status", event_id
            )
        finally:
            await conn.close()
        stop.set()
        peak = await rss

        print(line("baseline: GET /healthz", *base))
        print(line("POST /events/{id}/registrations", seconds, latencies, statuses))
        held = {r["status"]: r["n"] for r in rows}
        waiting = args.registrations - args.capacity
        exact = held.get("registered") == args.capacity and held.get("waitlisted", 0) == max(waiting, 0)
        print(f"seats: {held}  (capacity {args.capacity}: {'exact' if exact else 'WRONG'})")
        print(f"outbox drained {drained:.2f} s after the last answer; peak RSS of the service {peak:.0f} MB")
        rate, p99 = len(latencies) / seconds, pct(latencies, 99)
        verdict = "met" if rate >= TARGET_RATE and p99 <= TARGET_P99_MS else "NOT met"
        print(f"target ≥ {TARGET_RATE}/s with p99 ≤ {TARGET_P99_MS} ms: {verdict}")
        return 0 if exact and statuses == {201: args.registrations} else 1
    finally:
        service.stop()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
