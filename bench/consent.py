"""Consent benchmark: a bulk import of existing consents, and how soon a withdrawal is on the topic.

Figures beside baselines from the same run (the issue: import of consent for 23,000 members,
e.g. existing lists; a withdrawal visible on `consent-withdrawn` within p99 ≤ 1 s):

1. The consent service, as its own process on a fresh database. Invitations are off by
   default, so that N members do not queue N invitation mails ahead of the import
   (`--invitations` turns them on, to see what they cost).
2. N `member-registered` events (default 23,000) from a plain producer; time until
   consent knows every member (its `subjects` table).
3. Import: POST /consent/import with a comms staff token, batch after batch (default
   5,000 items); time until every POST answered (the facts are committed) and until
   all N `consent-given` events arrived at a plain consumer.
   Baseline A: a raw PostgreSQL COPY of the same N rows into a copy of the ledger table.
   Baseline B: a plain aiokafka producer sending the N `consent-given` payloads again
   (same keys, same bytes) to a scratch topic, until the plain consumer has them all.
4. Withdrawals: RFC 8058 one-click unsubscribes (POST /unsubscribe/{token}) for distinct
   members at a steady rate (default 20/s, 500 of them); latency from sending the POST
   to the member's event arriving at a plain consumer of `consent-withdrawn`.
   Baseline C: plain producer → plain consumer at the same rate on the same broker,
   with the same payloads.

Run through `bench/run consent` (it starts a dedicated broker and PostgreSQL cluster).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from tests import events
from tests.stack import ServiceProcess, Stack, service_process
from tqdm import tqdm

from alumni_kit.auth import FACULTIES, TokenSigner, issue_staff_token, issue_unsubscribe_token, parse_keys
from alumni_kit.kafka import TopicSpec, ensure_topics
from alumni_kit.topics import PLATFORM_TOPICS
from membership_backfill import pct, rss_mb
from usn_schemas.ids import new_id
from usn_tools.publish import publish_events

ROOT = Path(__file__).resolve().parents[1]
SIGNING_KEYS = "bench:a-benchmark-signing-key-of-enough-length"
SIGNER = TokenSigner(parse_keys(SIGNING_KEYS))
EVIDENCE = "benchmark: legacy newsletter list, double opt-in by the list tool"
PURPOSE = "newsletter"
LEDGER_COLUMNS = (
    "fact_id", "member_id", "sequence", "channel", "purpose", "state", "recorded_at",
    "source", "method", "notice_version", "notice_sha256", "reason", "actor",
)  # fmt: skip
# The probes' own fetches are short, so that they add little to the latency they measure.
PROBE_FETCH_WAIT_MS = 10
STALL_SECONDS = 60
TARGET_P99_MS = 1000


# ---- measuring instruments ------------------------------------------------------------------------------------


class PeakRss:
    """Samples one process's resident memory every 100 ms; `take()` is the peak since the last take."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._peak = 0.0
        self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            self._peak = max(self._peak, rss_mb(self.pid))
            await asyncio.sleep(0.1)

    def take(self) -> float:
        peak, self._peak = max(self._peak, rss_mb(self.pid)), 0.0
        return peak

    def close(self) -> None:
        self._task.cancel()


class TopicProbe:
    """A plain consumer of one topic (every partition, no group) noting when each key first arrived."""

    def __init__(self, bootstrap: str, topic: str, wanted: Callable[[bytes, bytes], bool] | None = None) -> None:
        self.topic = topic
        self._wanted = wanted  # (key, value) → count it? None: everything
        self.arrived: dict[bytes, float] = {}  # key → perf_counter() at arrival
        self.records: list[tuple[bytes, bytes]] = []  # (key, value), first of each key
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=PROBE_FETCH_WAIT_MS,
        )
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TopicProbe:
        await self._consumer.start()  # without a group, every partition is assigned here
        # Positioned before anything is measured: a record sent from now on is fetched at once.
        for tp in self._consumer.assignment():
            await self._consumer.position(tp)
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._task:
            self._task.cancel()
        await self._consumer.stop()

    async def _read(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for records in batch.values():
                for r in records:
                    if r.key not in self.arrived and (self._wanted is None or self._wanted(r.key, r.value)):
                        self.arrived[r.key] = now
                        self.records.append((r.key, r.value))

    async def count(self) -> int:
        return len(self.arrived)

    def last_arrival(self) -> float:
        return max(self.arrived.values())


async def wait_until(
    count: Callable[[], Awaitable[int]], total: int, desc: str, progress: bool, service: ServiceProcess | None = None
) -> float:
    """Poll `count` until it reaches `total`; perf_counter() when it did. Fails on a stall or a dead service."""
    last, last_change = -1, time.perf_counter()
    with tqdm(total=total, desc=desc, unit="", disable=not progress, mininterval=1) as bar:
        while True:
            done, now = await count(), time.perf_counter()
            bar.update(min(done, total) - bar.n)
            if done >= total:
                return now
            if done != last:
                last, last_change = done, now
            elif now - last_change > STALL_SECONDS:
                tail = service.tail() if service else ""
                raise RuntimeError(f"{desc}: no progress for {STALL_SECONDS} s at {done:,} of {total:,}\n{tail}")
            if service and service.proc and service.proc.poll() is not None:
                raise RuntimeError(f"{service.module} exited\n{service.tail()}")
            await asyncio.sleep(0.02)


def latencies_ms(sent_at: dict[bytes, float], arrived: dict[bytes, float]) -> list[float]:
    return [(arrived[key] - sent) * 1000 for key, sent in sent_at.items()]


async def paced(
    count: int, rate: float, send: Callable[[int], Coroutine[Any, Any, None]], desc: str, progress: bool
) -> None:
    """Start `send(i)` for i in range(count) at a steady `rate` a second, each on time (open loop)."""
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    for i in tqdm(range(count), desc=desc, unit="", disable=not progress, mininterval=1):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(send(i)))
    await asyncio.gather(*tasks)


# ---- the consent service and its members ---------------------------------------------------------------------


def consent_service(stack: Stack, db: str, prefix: str, invitations: bool) -> ServiceProcess:
    log = ROOT / ".run" / "bench" / "logs" / "consent-bench.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    service = service_process(stack, "consent", db, prefix, f"consent-{db}", log)
    service.env.update(
        ALUMNI_SIGNING_KEYS=SIGNING_KEYS,
        CONSENT_INVITATIONS_ENABLED=str(invitations).lower(),
        CONSENT_LOG_LEVEL="WARNING",
    )
    return service


def member_registered(member_id: str, i: int) -> dict[str, Any]:
    """A `member-registered` event as membership publishes it."""
    faculty = FACULTIES[i % len(FACULTIES)]
    return events.member_registered(
        member_id,
        email=f"member{i}@example.no",
        faculty=faculty,
        family_name=f"Nordmann {i}",
        student_number=f"{100000 + i}",
    )


async def register_members(
    stack: Stack, prefix: str, service: ServiceProcess, conn: asyncpg.Connection, members: list[str], progress: bool
) -> float:
    """Publish a `member-registered` event per member; seconds until consent knows them all."""
    started = time.perf_counter()
    events = (member_registered(m, i) for i, m in enumerate(members))
    await publish_events(stack.bootstrap, prefix + "member-registered", events, total=len(members), progress=progress)

    async def known() -> int:
        return int(await conn.fetchval("SELECT count(*) FROM subjects"))

    return await wait_until(known, len(members), "consent learns the members", progress, service) - started


# ---- import ---------------------------------------------------------------------------------------------------


def import_item(member_id: str, purpose: str = PURPOSE) -> dict[str, str]:
    return {"member_id": member_id, "channel": "email", "purpose": purpose, "state": "given"}


@dataclass
class ImportRun:
    answered_s: float = 0.0  # first POST sent → last POST answered (every fact committed)
    on_topic_s: float = 0.0  # first POST sent → last consent-given at the consumer
    slowest_post_s: float = 0.0
    posts: int = 0
    payloads: list[tuple[bytes, bytes]] = field(default_factory=list)


async def import_consents(
    client: httpx.AsyncClient,
    stack: Stack,
    prefix: str,
    service: ServiceProcess,
    members: list[str],
    batch: int,
    progress: bool,
    purpose: str = PURPOSE,
) -> ImportRun:
    """POST the import batch after batch, as a staff tool would, while a consumer reads `consent-given`."""
    headers = {"Authorization": f"Bearer {issue_staff_token(SIGNER, 'bench', 'comms', None, 3600)}"}
    bodies = [
        {"evidence": EVIDENCE, "items": [import_item(m, purpose) for m in members[i : i + batch]]}
        for i in range(0, len(members), batch)
    ]
    run = ImportRun()

    def of_this_import(_: bytes, value: bytes) -> bool:
        return f'"purpose":"{purpose}"'.encode() in value

    async with TopicProbe(stack.bootstrap, prefix + "consent-given", of_this_import) as probe:
        started = time.perf_counter()
        for body in tqdm(bodies, desc="import", unit="POST", disable=not progress):
            sent = time.perf_counter()
            response = await client.post("/consent/import", json=body, headers=headers)
            response.raise_for_status()
            if response.json()["recorded"] != len(body["items"]):
                raise RuntimeError(f"import recorded fewer facts than sent: {response.json()}")
            run.slowest_post_s = max(run.slowest_post_s, time.perf_counter() - sent)
            run.posts += 1
        run.answered_s = time.perf_counter() - started
        await wait_until(probe.count, len(members), "consent-given on the topic", progress, service)
        run.on_topic_s = probe.last_arrival() - started
        run.payloads = probe.records
    return run


async def copy_baseline(dsn: str, members: list[str]) -> float:
    """Seconds for a raw COPY of the same N facts into a copy of the ledger (its columns, keys and indexes)."""
    now = datetime.now(UTC)
    rows = [
        (new_id(), m, 1, "email", PURPOSE, "given", now, "import", "import", None, None, EVIDENCE, "bench")
        for m in members
    ]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE bench_ledger_copy (LIKE ledger INCLUDING ALL)")
        started = time.perf_counter()
        await conn.copy_records_to_table("bench_ledger_copy", records=rows, columns=LEDGER_COLUMNS)
        return time.perf_counter() - started
    finally:
        await conn.execute("DROP TABLE IF EXISTS bench_ledger_copy")
        await conn.close()


async def producer_baseline(bootstrap: str, topic: str, payloads: list[tuple[bytes, bytes]], progress: bool) -> float:
    """Seconds for a plain producer to send `payloads` until a plain consumer has read them all."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        async with TopicProbe(bootstrap, topic) as probe:
            started = time.perf_counter()
            futures = [await producer.send(topic, key=k, value=v) for k, v in payloads]
            await asyncio.gather(*futures)
            await wait_until(probe.count, len(payloads), "baseline B: read back", progress)
            return probe.last_arrival() - started
    finally:
        await producer.stop()


# ---- withdrawals ----------------------------------------------------------------------------------------------


@dataclass
class WithdrawalRun:
    answered_ms: list[float] = field(default_factory=list)  # POST sent → response (the fact is committed)
    on_topic_ms: list[float] = field(default_factory=list)  # POST sent → event at the consumer
    payloads: list[tuple[bytes, bytes]] = field(default_factory=list)


async def withdrawals(
    client: httpx.AsyncClient,
    stack: Stack,
    prefix: str,
    service: ServiceProcess,
    members: list[str],
    rate: float,
    progress: bool,
) -> WithdrawalRun:
    """One-click unsubscribes (RFC 8058) for `members` at a steady `rate` a second."""
    tokens = [issue_unsubscribe_token(SIGNER, m, PURPOSE, 3600) for m in members]
    sent_at: dict[bytes, float] = {}
    run = WithdrawalRun()

    async def unsubscribe(i: int) -> None:
        sent = sent_at[members[i].encode()] = time.perf_counter()
        response = await client.post(f"/unsubscribe/{tokens[i]}", data={"List-Unsubscribe": "One-Click"})
        run.answered_ms.append((time.perf_counter() - sent) * 1000)
        if response.status_code != 200 or response.text != "unsubscribed":
            raise RuntimeError(f"unsubscribe answered {response.status_code}: {response.text}")

    ours = {m.encode() for m in members}
    async with TopicProbe(stack.bootstrap, prefix + "consent-withdrawn", lambda key, _: key in ours) as probe:
        await paced(len(members), rate, unsubscribe, "one-click unsubscribes", progress)
        await wait_until(probe.count, len(members), "consent-withdrawn on the topic", progress, service)
        run.on_topic_ms = latencies_ms(sent_at, probe.arrived)
        run.payloads = probe.records
    return run


async def broker_latency(bootstrap: str, topic: str, payloads: list[tuple[bytes, bytes]], rate: float) -> list[float]:
    """Baseline C: a plain producer (acks=all) sends `payloads` at `rate`; ms until a plain consumer has each."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=0)
    await producer.start()
    sent_at: dict[bytes, float] = {}

    async def send(i: int) -> None:
        key, value = payloads[i]
        sent_at[key] = time.perf_counter()
        await producer.send(topic, key=key, value=value)

    try:
        async with TopicProbe(bootstrap, topic) as probe:
            await paced(len(payloads), rate, send, "baseline C", progress=False)
            await wait_until(probe.count, len(payloads), "baseline C: read back", progress=False)
            return latencies_ms(sent_at, probe.arrived)
    finally:
        await producer.stop()


# ---- the run --------------------------------------------------------------------------------------------------


@dataclass
class Figures:
    register_s: float = 0.0
    copy_s: float = 0.0
    producer_s: float = 0.0
    imported: ImportRun = field(default_factory=ImportRun)
    withdrawn: WithdrawalRun = field(default_factory=WithdrawalRun)
    # the same withdrawals for other members while a second import (purpose "events") runs
    withdrawn_during_import: WithdrawalRun = field(default_factory=WithdrawalRun)
    second_import: ImportRun = field(default_factory=ImportRun)
    broker_ms: list[float] = field(default_factory=list)
    peak_mb: dict[str, float] = field(default_factory=dict)


async def measure(stack: Stack, args: argparse.Namespace, progress: bool) -> Figures:
    """Start consent on a fresh database and topics, run every phase against it, stop it."""
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    scratch = [TopicSpec("bench-given", 6), TopicSpec("bench-withdrawn", 6)]  # as consent-given/-withdrawn
    await ensure_topics(stack.bootstrap, [*PLATFORM_TOPICS, *scratch], prefix)
    db = await stack.create_database(owner="consent")
    service = consent_service(stack, db, prefix, args.invitations)
    service.start()
    assert service.proc is not None
    rss = PeakRss(service.proc.pid)
    try:
        await service.wait_ready()
        async with httpx.AsyncClient(base_url=service.url, timeout=600) as client:
            return await phases(stack, prefix, db, service, client, rss, args, progress)
    finally:
        rss.close()
        service.stop()


async def phases(
    stack: Stack,
    prefix: str,
    db: str,
    service: ServiceProcess,
    client: httpx.AsyncClient,
    rss: PeakRss,
    args: argparse.Namespace,
    progress: bool,
) -> Figures:
    figures = Figures()
    members = [new_id() for _ in range(args.members)]
    print(f"consent: {args.members:,} member-registered events …", flush=True)
    conn = await asyncpg.connect(stack.service_dsn("consent", db))
    try:
        figures.register_s = await register_members(stack, prefix, service, conn, members, progress)
    finally:
        await conn.close()
    figures.peak_mb["registration"] = rss.take()
    print("baseline A: PostgreSQL COPY …", flush=True)
    figures.copy_s = await copy_baseline(stack.admin_dsn(db), members)
    print(f"consent: import in batches of {args.batch:,} …", flush=True)
    figures.imported = await import_consents(client, stack, prefix, service, members, args.batch, progress)
    figures.peak_mb["import"] = rss.take()
    print("baseline B: plain producer → plain consumer …", flush=True)
    figures.producer_s = await producer_baseline(
        stack.bootstrap, prefix + "bench-given", figures.imported.payloads, progress
    )
    rss.take()
    print(f"consent: {args.withdrawals:,} one-click unsubscribes at {args.rate:g}/s …", flush=True)
    chosen = members[: args.withdrawals]
    figures.withdrawn = await withdrawals(client, stack, prefix, service, chosen, args.rate, progress)
    figures.peak_mb["withdrawals"] = rss.take()
    print(f"baseline C: plain producer → plain consumer at {args.rate:g}/s …", flush=True)
    figures.broker_ms = await broker_latency(
        stack.bootstrap, prefix + "bench-withdrawn", figures.withdrawn.payloads, args.rate
    )
    others = members[args.withdrawals : 2 * args.withdrawals]
    print(f"consent: {len(others):,} more unsubscribes while all members are imported for 'events' …", flush=True)
    figures.second_import, figures.withdrawn_during_import = await asyncio.gather(
        import_consents(client, stack, prefix, service, members, args.batch, False, purpose="events"),
        withdrawals(client, stack, prefix, service, others, args.rate, progress),
    )
    figures.peak_mb["import + withdrawals"] = rss.take()
    return figures


def latency_line(label: str, values: list[float]) -> str:
    return (
        f"    {label:44} {len(values)}: p50 {pct(values, 50):4.0f} ms, p95 {pct(values, 95):4.0f} ms, "
        f"p99 {pct(values, 99):4.0f} ms, max {max(values):4.0f} ms"
    )


def report(figures: Figures, args: argparse.Namespace) -> None:
    n, imp = args.members, figures.imported
    invitations = "on" if args.invitations else "off"
    print(f"\nConsent benchmark — {n:,} members, {os.cpu_count()} cores, invitations {invitations}")
    print(f"  {'what':64} {'seconds':>8} {'facts/s':>10}")
    rows = [
        ("member-registered → consent knows every member (members/s)", figures.register_s),
        (f"import: {imp.posts} POST(s) of ≤ {args.batch:,} items, all answered (committed)", imp.answered_s),
        ("import: first POST → last consent-given at a consumer", imp.on_topic_s),
        ("baseline A: PostgreSQL COPY of the same rows into a ledger copy", figures.copy_s),
        ("baseline B: plain producer → plain consumer, the same payloads", figures.producer_s),
    ]
    for what, seconds in rows:
        print(f"  {what:64} {seconds:8.2f} {n / seconds:10,.0f}")
    ratio_a, ratio_b = imp.on_topic_s / figures.copy_s, imp.on_topic_s / figures.producer_s
    print(f"    import end to end: {ratio_a:.0f}× baseline A, {ratio_b:.0f}× baseline B", end="")
    print(f"; slowest POST {imp.slowest_post_s:.1f} s")
    print(
        "  peak RSS of the consent process: "
        + ", ".join(f"{phase} {mb:.0f} MB" for phase, mb in figures.peak_mb.items())
        + "   target ≤ 200 MB"
    )
    w = figures.withdrawn
    verdict = "met" if pct(w.on_topic_ms, 99) <= TARGET_P99_MS else "MISSED"
    print(f"  one-click unsubscribe at a steady {args.rate:g}/s, distinct members (target p99 ≤ 1 s: {verdict}):")
    print(latency_line("POST sent → answered (fact committed)", w.answered_ms))
    print(latency_line("POST sent → event on consent-withdrawn", w.on_topic_ms))
    print(latency_line("baseline C: plain producer → plain consumer", figures.broker_ms))
    d, second = figures.withdrawn_during_import, figures.second_import
    verdict = "met" if pct(d.on_topic_ms, 99) <= TARGET_P99_MS else "MISSED"
    print(
        f"  the same, other members, while all {n:,} are imported for 'events' ({second.answered_s:.1f} s; {verdict}):"
    )
    print(latency_line("POST sent → answered (fact committed)", d.answered_ms))
    print(latency_line("POST sent → event on consent-withdrawn", d.on_topic_ms))


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--members", type=int, default=23_000, help="members consent knows and imports (23,000)")
    parser.add_argument("--batch", type=int, default=5000, help="items per import POST (at most 10,000; 5,000)")
    parser.add_argument("--withdrawals", type=int, default=500, help="one-click unsubscribes, distinct members (500)")
    parser.add_argument("--rate", type=float, default=20, help="unsubscribes a second, sent open-loop (20)")
    parser.add_argument("--invitations", action="store_true", help="let consent queue an invitation per new member")
    args = parser.parse_args()
    if not 1 <= args.batch <= 10_000:
        parser.error("--batch must be 1 … 10,000 (the import's limit per request)")
    if not 1 <= 2 * args.withdrawals <= args.members:
        parser.error("--withdrawals must be 1 … --members / 2 (two rounds, each withdraws distinct imported members)")
    if args.rate <= 0:
        parser.error("--rate must be positive")
    return args


async def main() -> int:
    args = arguments()
    figures = await measure(Stack.from_env(), args, progress=sys.stderr.isatty())
    report(figures, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
