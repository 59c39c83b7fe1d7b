"""Mailer benchmark: a newsletter to N consenting members, delivered to a local SMTP server.

Figures beside a baseline from the same run (the mailer issue: 23,000 consenting members,
target ≥ 500 messages/s with every recipient's consent checked, with peak RSS):

1. An SMTP sink (tests.smtp.SmtpSink, keep_parsed=False: it counts, keeps no messages;
   fast=True: it reads DATA in bulk, not line by line, so it is not what the figures measure),
   by default in a process of its own so that it shares no GIL with the bench
   (`--sink thread` runs it in a thread of the bench process, as the tests do).
2. The mailer, as its own process on a fresh database, sending to that sink with
   MAILER_SMTP_CONNECTIONS = each value of `--connections` (one round per value).
3. N `member-registered` and N `consent-given` events (newsletter, email) from a plain
   producer; time until the mailer's `members` and `consent_view` tables hold them all.
4. Per round: one campaign request (faculty USN, purpose newsletter) to all N members;
   time from the request to `campaigns.status` = done, and from the first to the last
   message at the sink; every member must have got exactly one message.
   Baseline: a bare aiosmtplib loop over the same number of connections sending N
   messages made from one the mailer sent (its bytes, each member's address) to the same
   sink, MAIL/RCPT/DATA as the mailer's pool does.
5. CPU seconds of the mailer, the sink, PostgreSQL and the broker during each campaign,
   and the mailer's peak RSS. `--profile DIR` runs the mailer under cProfile.

Run through `bench/run mailer` (it starts a dedicated broker and PostgreSQL cluster).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from aiosmtpd.smtp import Envelope
from tests import events
from tests.smtp import SmtpSink
from tests.stack import ServiceProcess, Stack, free_port, service_process

from alumni_kit.kafka import ensure_topics
from alumni_kit.topics import PLATFORM_TOPICS
from consent import SIGNING_KEYS, PeakRss, member_registered, wait_until
from usn_schemas.ids import new_id
from usn_tools.publish import publish_events

ROOT = Path(__file__).resolve().parents[1]
SERVICE_DEFAULT_CONNECTIONS = 8  # MailerSettings.smtp_connections
TARGET_PER_SECOND = 500
BODY = """Hei {{ given_name }}!

Velkommen til høstens nyhetsbrev fra USN Alumni. I år har vi fått over 23 000 alumner på lista,
og vi gleder oss over at så mange vil holde kontakten med universitetet.

## Hva skjer

- [Julemøtet](https://www.usn.no/alumni/jul) er 12. desember i Bø, Drammen og på Kongsberg.
- [Mentorprogrammet](https://www.usn.no/alumni/mentor) tar imot søknader til 1. februar.
- Les om [forskningen ved USN](https://www.usn.no/forskning) og hvordan du kan bidra.

Har du byttet jobb eller flyttet? Oppdater profilen din, så treffer vi bedre neste gang.

Vennlig hilsen
Alumnikontakten ved USN
"""


# ---- the SMTP sink, here or in a process of its own -----------------------------------------------------------


class TimedSink(SmtpSink):
    """SmtpSink(keep_parsed=False, fast=True) that also notes when the first and last message arrived, and keeps
    the first one (its envelope and bytes) as the baseline's template. `mark()` starts a new count."""

    def __init__(self) -> None:
        super().__init__(keep_parsed=False, fast=True)
        self._marks = threading.Lock()
        self._base_count = 0
        self._base_recipients: Counter[str] = Counter()
        self.first: float | None = None  # time.monotonic(), the same clock in every process on Linux
        self.last: float | None = None
        self.sample: tuple[str, str, bytes] | None = None  # (MAIL FROM, RCPT TO, bytes)

    def _record(self, envelope: Envelope) -> None:
        super()._record(envelope)
        now = time.monotonic()
        with self._marks:
            if self.first is None:
                self.first = now
                self.sample = (envelope.mail_from or "", envelope.rcpt_tos[0], envelope.original_content or b"")
            self.last = now

    def mark(self) -> None:
        with self._marks:
            self._base_count, self._base_recipients = self.count(), self.recipient_counts()
            self.first = self.last = self.sample = None

    def stats(self) -> dict[str, Any]:
        with self._marks:
            return {"count": self.count() - self._base_count, "first": self.first, "last": self.last}

    def since_mark(self) -> Counter[str]:
        with self._marks:
            return self.recipient_counts() - self._base_recipients


def sink_child() -> None:
    """`python bench/mailer.py sink-child`: a TimedSink answering one command a line on stdin, in JSON."""
    sink = TimedSink()
    sink.start()
    print(json.dumps({"port": sink.port}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "stats":
            answer: Any = sink.stats()
        elif command == "recipients":
            answer = dict(sink.since_mark())
        elif command == "sample":
            s = sink.sample
            answer = s and {"mail_from": s[0], "rcpt": s[1], "raw": base64.b64encode(s[2]).decode()}
        elif command == "mark":
            sink.mark()
            answer = "ok"
        else:
            answer = f"unknown command {command!r}"
        print(json.dumps(answer), flush=True)
    sink.stop()


class Sink:
    """The bench's handle on the sink: a TimedSink in this process (thread) or in a child process."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.host = "127.0.0.1"
        self.port = 0
        self.pid = os.getpid()
        self._local: TimedSink | None = None
        self._child: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        if self.mode == "thread":
            self._local = TimedSink()
            self._local.start()
            self.port = self._local.port
            return
        self._child = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "sink-child",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            limit=64 * 1024 * 1024,  # the recipients answer is one line
        )
        self.pid = self._child.pid
        self.port = int((await self._ask_line())["port"])

    async def _ask_line(self) -> Any:
        assert self._child is not None
        assert self._child.stdout is not None
        line = await self._child.stdout.readline()
        if not line:
            raise RuntimeError("the SMTP sink process exited")
        return json.loads(line)

    async def _ask(self, command: str) -> Any:
        assert self._child is not None
        assert self._child.stdin is not None
        self._child.stdin.write(command.encode() + b"\n")
        await self._child.stdin.drain()
        return await self._ask_line()

    def cpu_label(self) -> dict[str, int]:
        """{"sink": pid} when it has a process of its own (in a thread, its CPU is the bench's)."""
        return {"sink": self.pid} if self._child else {}

    async def mark(self) -> None:
        if self._local:
            self._local.mark()
        else:
            await self._ask("mark")

    async def stats(self) -> dict[str, Any]:
        return self._local.stats() if self._local else await self._ask("stats")

    async def count(self) -> int:
        return int((await self.stats())["count"])

    async def recipients(self) -> Counter[str]:
        return self._local.since_mark() if self._local else Counter(await self._ask("recipients"))

    async def sample(self) -> tuple[str, str, bytes]:
        if self._local:
            assert self._local.sample is not None
            return self._local.sample
        s = await self._ask("sample")
        return s["mail_from"], s["rcpt"], base64.b64decode(s["raw"])

    async def stop(self) -> None:
        if self._local:
            self._local.stop()
        if self._child and self._child.returncode is None:
            assert self._child.stdin is not None
            self._child.stdin.close()
            try:
                await asyncio.wait_for(self._child.wait(), 10)
            except TimeoutError:
                self._child.kill()
                await self._child.wait()


# ---- CPU use of the processes involved ------------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int | str) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _stack_pids(stack: Stack) -> dict[str, list[str]]:
    """This run's PostgreSQL cluster (its postmaster and backends) and broker: other clusters may run beside."""
    postmaster, processes = "", []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                parent = (entry / "stat").read_text().rpartition(")")[2].split()[1]
            except OSError:
                continue
            processes.append((entry.name, comm, command, parent))
            if comm == "postgres" and f"-p {stack.pg_port}" in command and " -D " in command:
                postmaster = entry.name
    return {
        "postgres": [pid for pid, comm, _, parent in processes if pid == postmaster or parent == postmaster],
        "broker": [pid for pid, comm, command, _ in processes if comm == "java" and str(stack.run_dir) in command],
    }


def _machine_busy() -> float:
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / TICK  # all but idle and iowait


@dataclass
class CpuMeter:
    """CPU seconds used between `start()` and `stop()`, per process (group), as cores in use."""

    stack: Stack
    pids: dict[str, int]  # label → pid
    _before: dict[str, float] = field(default_factory=dict)
    _groups: dict[str, dict[str, float]] = field(default_factory=dict)
    _started: float = 0.0
    cores: dict[str, float] = field(default_factory=dict)  # label → cores in use on average
    used: dict[str, float] = field(default_factory=dict)  # label → CPU seconds

    def _sample(self) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        single = {label: _cpu_of(pid) for label, pid in self.pids.items()}
        single["machine"] = _machine_busy()
        groups = {name: {pid: _cpu_of(pid) for pid in pids} for name, pids in _stack_pids(self.stack).items()}
        return single, groups

    def start(self) -> None:
        self._before, self._groups = self._sample()
        self._started = time.monotonic()

    def stop(self) -> None:
        seconds = time.monotonic() - self._started
        after, groups = self._sample()
        for label, value in after.items():
            self.used[label] = value - self._before[label]
        for name, pids in groups.items():
            self.used[name] = sum(cpu - self._groups[name].get(pid, 0.0) for pid, cpu in pids.items())
        self.cores = {label: used / seconds for label, used in self.used.items()}


# ---- the mailer and its members --------------------------------------------------------------------------------


class ProfiledService(ServiceProcess):
    """With `profile_to` set, the service runs through `mailer_child` (cProfile and phase timers)."""

    profile_to: Path | None = None

    def start(self) -> None:
        if self.profile_to is None:
            super().start()
            return
        log = self.log_path.open("ab")
        command = [sys.executable, __file__, "mailer-child", str(self.profile_to)]
        self.proc = subprocess.Popen(command, env={**os.environ, **self.env}, stdout=log, stderr=log)


# Where a round of the send loop spends its time (sender.py): wall seconds per call, summed.
TIMED = {
    "mailer.sender:Sender._top_up": "claim: select due deliveries, mark them sending",
    "mailer.sender:Sender._wait_for_progress": "loop: waits while the connections send",
    "mailer.sender:Sender._send_one": "  per message (concurrent): consent, compose, SMTP",
    "mailer.sender:Sender._message": "    consent re-check + compose",
    "mailer.recheck:ConsentRecheck._answer": "      consent re-check: one query per wave",
    "mailer.compose:Prepared.render": "      compose: Prepared.render (CPU)",
    "mailer.sender:issue_unsubscribe_token": "      unsubscribe token (CPU)",
    "mailer.smtp:SmtpPool.send": "    SMTP: MAIL, RCPT, DATA",
    "mailer.sender:Sender._record_done": "record: outcomes + outbox, one transaction",
    "mailer.sender:Sender._finish_campaigns": "finish campaigns",
    "mailer.sender:Sender._sleep": "sender idle (sleep)",
}


def mailer_child(out: Path) -> None:
    """`python bench/mailer.py mailer-child DIR`: the mailer under cProfile, with the send loop's phases timed
    (wrapped from outside: no service code changes). Writes DIR/mailer.prof and DIR/phases.json at exit."""
    import cProfile
    import importlib
    import inspect
    import runpy
    import signal

    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(here)]  # `mailer` is the service
    phases: dict[str, list[float]] = {}

    def wrap(target: str) -> None:
        module_name, _, attribute = target.partition(":")
        owner: Any = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part, None)
        if not hasattr(owner, name):  # the code moved on: time what still exists
            print(f"mailer-child: {target} not found, not timed", file=sys.stderr)
            return
        original, tally = getattr(owner, name), phases.setdefault(target, [0, 0.0])
        if inspect.iscoroutinefunction(original):

            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await original(*args, **kwargs)
                finally:
                    tally[0] += 1
                    tally[1] += time.perf_counter() - started

            setattr(owner, name, timed_async)
        else:

            def timed(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    tally[0] += 1
                    tally[1] += time.perf_counter() - started

            setattr(owner, name, timed)

    for target in TIMED:
        wrap(target)
    # uvicorn re-raises the SIGTERM it handled once it has shut down: end with the `finally` below instead.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    profile = cProfile.Profile()
    profile.enable()
    try:
        runpy.run_module("mailer", run_name="__main__")
    finally:
        profile.disable()
        profile.dump_stats(out / "mailer.prof")
        (out / "phases.json").write_text(json.dumps(phases))


def print_profile(directory: Path) -> None:
    import pstats

    phases = json.loads((directory / "phases.json").read_text())
    print(f"\n  the send loop's phases (wall time summed over calls; cProfile on, so slower): {directory}")
    for target, label in TIMED.items():
        calls, seconds = phases.get(target, [0, 0.0])
        per_call = f"{seconds / calls * 1000:8.2f} ms/call" if calls else ""
        print(f"    {label:54} {calls:8,} calls {seconds:8.2f} s {per_call}")
    print("\n  cProfile, top functions by own time:")
    stats = pstats.Stats(str(directory / "mailer.prof"), stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(25)


def mailer_service(stack: Stack, db: str, prefix: str, group: str, sink: Sink, connections: int) -> ProfiledService:
    log = ROOT / ".run" / "bench" / "logs" / "mailer-bench.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    plain = service_process(stack, "mailer", db, prefix, group, log)
    service = ProfiledService(plain.module, plain.env, plain.http_port, plain.log_path)
    service.env.update(
        ALUMNI_SIGNING_KEYS=SIGNING_KEYS,
        MAILER_SMTP_HOST=sink.host,
        MAILER_SMTP_PORT=str(sink.port),
        MAILER_SMTP_CONNECTIONS=str(connections),
        MAILER_BOUNCE_LISTEN_PORT=str(free_port()),
        MAILER_CONSENT_BASE_URL="https://alumni.usn.no",
        MAILER_LOG_LEVEL="INFO",
    )
    return service


def consent_given(member_id: str) -> dict[str, Any]:
    """A `consent-given` fact (email, newsletter) as the consent service publishes it."""
    return events.consent_fact(member_id, 1, "given")


def campaign_requested(campaign_id: str) -> dict[str, Any]:
    return events.campaign(
        campaign_id,
        faculty="USN",
        requested_by="bench@usn.no",
        subject="Nytt fra USN Alumni – høsten er her",
        body_markdown=BODY,
    )


async def load_members(
    stack: Stack, prefix: str, service: ServiceProcess, conn: asyncpg.Connection, members: list[str], progress: bool
) -> float:
    """N member-registered and N consent-given events; seconds until the mailer's copies hold them all."""
    started = time.perf_counter()
    registered = (member_registered(m, i) for i, m in enumerate(members))
    await publish_events(stack.bootstrap, prefix + "member-registered", registered, len(members), progress)
    given = (consent_given(m) for m in members)
    await publish_events(stack.bootstrap, prefix + "consent-given", given, len(members), progress)

    async def known() -> int:
        held = await conn.fetchrow("SELECT (SELECT count(*) FROM members) m, (SELECT count(*) FROM consent_view) c")
        assert held is not None
        return min(int(held["m"]), int(held["c"]))

    return await wait_until(known, len(members), "the mailer learns members and consent", progress, service) - started


# ---- one campaign ---------------------------------------------------------------------------------------------


@dataclass
class Delivered:
    """What arrived at the sink in one phase."""

    count: int = 0
    first: float = 0.0  # time.monotonic()
    last: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.last - self.first


async def check_delivery(sink: Sink, addresses: set[str]) -> Delivered:
    """Every address got exactly one message, and nobody else got any."""
    await asyncio.sleep(1.0)  # a late extra would show
    stats, received = await sink.stats(), await sink.recipients()
    result = Delivered(stats["count"], stats["first"] or 0.0, stats["last"] or 0.0)
    missing = addresses - received.keys()
    twice = [a for a, n in received.items() if n > 1]
    strangers = received.keys() - addresses
    if result.count != len(addresses):
        result.problems.append(f"{result.count:,} messages arrived for {len(addresses):,} recipients")
    if missing:
        result.problems.append(f"{len(missing):,} recipients got nothing, e.g. {sorted(missing)[:3]}")
    if twice:
        result.problems.append(f"{len(twice):,} recipients got more than one message, e.g. {sorted(twice)[:3]}")
    if strangers:
        result.problems.append(f"{len(strangers):,} unexpected recipients, e.g. {sorted(strangers)[:3]}")
    return result


@dataclass
class Round:
    connections: int
    requested: float = 0.0  # time.monotonic() of the campaign request
    sending: float = 0.0  # status 'sending': the audience is resolved into deliveries
    done: float = 0.0  # status 'done'
    mailer: Delivered = field(default_factory=Delivered)
    states: dict[str, int] = field(default_factory=dict)  # deliveries by state
    baseline: Delivered = field(default_factory=Delivered)
    baseline_loop_s: float = 0.0
    message_bytes: int = 0
    cpu: CpuMeter | None = None
    baseline_cpu: CpuMeter | None = None
    peak_mb: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)


async def run_campaign(
    stack: Stack,
    prefix: str,
    service: ServiceProcess,
    conn: asyncpg.Connection,
    sink: Sink,
    addresses: set[str],
    result: Round,
    progress: bool,
) -> None:
    """Request one campaign to everybody; wait until it is done and every message arrived."""
    campaign_id = f"bench-{uuid.uuid4().hex[:8]}"
    key, value = campaign_id.encode(), json.dumps(campaign_requested(campaign_id), ensure_ascii=False).encode()
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    await sink.mark()
    assert service.proc is not None
    meter = CpuMeter(stack, {"mailer": service.proc.pid, **sink.cpu_label(), "bench": os.getpid()})
    meter.start()
    try:
        result.requested = time.monotonic()
        await producer.send_and_wait(prefix + "campaigns", key=key, value=value)
    finally:
        await producer.stop()

    async def delivered_when_done() -> int:
        status = await conn.fetchval("SELECT status FROM campaigns WHERE campaign_id = $1", campaign_id)
        now = time.monotonic()
        if status in ("sending", "done") and not result.sending:
            result.sending = now
        if status == "done" and not result.done:
            result.done = now
        count = await sink.count()
        return count if result.done else min(count, len(addresses) - 1)

    await wait_until(delivered_when_done, len(addresses), "campaign: messages at the sink", progress, service)
    meter.stop()
    result.cpu = meter
    result.mailer = await check_delivery(sink, addresses)
    rows = await conn.fetch(
        "SELECT state, count(*) AS n FROM deliveries WHERE campaign_id = $1 GROUP BY state", campaign_id
    )
    result.states = {r["state"]: int(r["n"]) for r in rows}
    result.metrics = await mailer_metrics(service)


async def mailer_metrics(service: ServiceProcess) -> dict[str, float]:
    """mailer_deliveries_total by outcome, from the service's /metrics."""
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as client:
        text = (await client.get("/metrics")).text
    found = re.findall(r'^mailer_deliveries_total\{outcome="([^"]+)"\} ([0-9.e+]+)$', text, re.MULTILINE)
    return {outcome: float(n) for outcome, n in found}


# ---- the baseline: a bare aiosmtplib loop ---------------------------------------------------------------------


async def bare_loop(sink: Sink, mail_from: str, messages: list[tuple[str, bytes]], connections: int) -> float:
    """Send `messages` (recipient, bytes) over `connections` connections, MAIL/RCPT/DATA each; seconds taken."""
    clients = [aiosmtplib.SMTP(hostname=sink.host, port=sink.port, timeout=30) for _ in range(connections)]
    await asyncio.gather(*(c.connect() for c in clients))
    todo = iter(messages)  # shared: each message is taken by one connection

    async def connection(client: aiosmtplib.SMTP) -> None:
        for recipient, data in todo:
            await client.mail(mail_from)
            await client.rcpt(recipient)
            await client.data(data)

    started = time.monotonic()
    try:
        await asyncio.gather(*(connection(c) for c in clients))
        return time.monotonic() - started
    finally:
        await asyncio.gather(*(c.quit() for c in clients), return_exceptions=True)


async def run_baseline(stack: Stack, sink: Sink, addresses: list[str], result: Round) -> None:
    """The mailer's first message as the template, each member's address in its To header."""
    mail_from, template_rcpt, template = await sink.sample()
    result.message_bytes = len(template)
    needle = template_rcpt.encode()
    if needle not in template:
        raise RuntimeError(f"the template does not name its recipient {template_rcpt}")
    messages = [(a, template.replace(needle, a.encode())) for a in addresses]
    await sink.mark()
    meter = CpuMeter(stack, {**sink.cpu_label(), "bench": os.getpid()})
    meter.start()
    result.baseline_loop_s = await bare_loop(sink, mail_from, messages, result.connections)
    meter.stop()
    result.baseline_cpu = meter
    result.baseline = await check_delivery(sink, set(addresses))


# ---- the run --------------------------------------------------------------------------------------------------


@dataclass
class Figures:
    load_s: float = 0.0
    load_peak_mb: float = 0.0
    rounds: list[Round] = field(default_factory=list)
    profiles: list[Path] = field(default_factory=list)


async def measure(stack: Stack, args: argparse.Namespace, progress: bool) -> Figures:
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    await ensure_topics(stack.bootstrap, PLATFORM_TOPICS, prefix)
    db = await stack.create_database(owner="mailer")
    group = f"mailer-{db}"
    members = [new_id() for _ in range(args.members)]
    addresses = [f"member{i}@example.no" for i in range(args.members)]  # as consent.member_registered has them
    figures = Figures()
    sink = Sink(args.sink)
    await sink.start()
    conn = await asyncpg.connect(stack.service_dsn("mailer", db))
    try:
        for connections in args.connections:
            service = mailer_service(stack, db, prefix, group, sink, connections)
            if args.profile:
                service.profile_to = args.profile / f"connections-{connections}"
                service.profile_to.mkdir(parents=True, exist_ok=True)
                figures.profiles.append(service.profile_to)
            result = Round(connections)
            service.start()
            assert service.proc is not None
            rss = PeakRss(service.proc.pid)
            try:
                await service.wait_ready()
                if not figures.load_s:
                    print(f"mailer: {args.members:,} members and their consent …", flush=True)
                    figures.load_s = await load_members(stack, prefix, service, conn, members, progress)
                    figures.load_peak_mb = rss.take()
                rss.take()
                print(f"mailer: a campaign to {args.members:,} members, {connections} SMTP connections …", flush=True)
                await run_campaign(stack, prefix, service, conn, sink, set(addresses), result, progress)
                result.peak_mb = rss.take()
            finally:
                rss.close()
                service.stop()
            print(f"baseline: bare aiosmtplib loop, {connections} connections …", flush=True)
            await run_baseline(stack, sink, addresses, result)
            figures.rounds.append(result)
    finally:
        await conn.close()
        await sink.stop()
    return figures


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:10,.0f}" if seconds > 0 else f"{'–':>10}"


CPU_ORDER = ["mailer", "sink", "bench", "postgres", "broker"]


def cpu_lines(what: str, meter: CpuMeter | None, messages: int) -> str:
    """Cores in use on average, and CPU milliseconds per message, of each process (group)."""
    if meter is None:
        return ""
    cores = ", ".join(f"{label} {meter.cores[label]:.2f}" for label in CPU_ORDER if label in meter.cores)
    per_message = ", ".join(
        f"{label} {meter.used[label] / messages * 1000:.2f}" for label in CPU_ORDER if label in meter.used
    )
    return (
        f"    CPU, {what}: cores in use {cores}; machine {meter.cores['machine']:.2f} of {os.cpu_count()}\n"
        f"    CPU, {what}: ms per message {per_message}"
    )


def report(figures: Figures, args: argparse.Namespace) -> bool:
    """Print the table; False if any delivery check failed."""
    n = args.members
    where = "its own process" if args.sink == "process" else "a thread of the bench process"
    print(f"\nMailer benchmark — {n:,} consenting members, {os.cpu_count()} cores, SMTP sink in {where}")
    print(f"  {'what':70} {'seconds':>8} {'msgs/s':>10}")
    print(f"  {'load: member-registered + consent-given → mailer tables (members/s)':70} {figures.load_s:8.2f}", end="")
    print(f" {rate(n, figures.load_s)}")
    ok, best = True, 0.0
    for r in figures.rounds:
        size = f", messages of {r.message_bytes / 1024:.1f} KiB" if r.message_bytes else ""
        print(f"  {r.connections} SMTP connection{'s' if r.connections != 1 else ''}{size}:")
        rows = [
            ("campaign request → audience resolved (status sending)", r.sending - r.requested, 0),
            ("campaign request → first message at the sink", r.mailer.first - r.requested, 0),
            ("mailer: first → last message at the sink", r.mailer.seconds, n),
            ("campaign request → status done", r.done - r.requested, n),
            ("baseline: bare aiosmtplib loop, same messages, first → last", r.baseline.seconds, n),
        ]
        for what, seconds, count in rows:
            print(f"    {what:68} {seconds:8.2f} {rate(count, seconds) if count else ''}")
        ratio = r.baseline.seconds / r.mailer.seconds if r.mailer.seconds > 0 else 0.0
        print(f"    mailer at {ratio:.0%} of the baseline's rate (baseline loop {r.baseline_loop_s:.2f} s)")
        states = ", ".join(f"{state} {count:,}" for state, count in sorted(r.states.items()))
        sent = int(r.metrics.get("sent", 0))
        for label, d in (("mailer", r.mailer), ("baseline", r.baseline)):
            if d.problems:
                ok = False
                print(f"    {label} delivery FAILED: " + "; ".join(d.problems))
        if not r.mailer.problems:
            print(f"    delivered: {r.mailer.count:,} messages, each of {n:,} recipients exactly once", end="")
            print(f"; deliveries {states}; mailer_deliveries_total sent {sent:,}")
        print(cpu_lines("campaign", r.cpu, n))
        print(cpu_lines("baseline", r.baseline_cpu, n))
        if r.cpu and r.cpu.used.get("mailer"):
            ceiling = n / r.cpu.used["mailer"]
            print(f"    the mailer's CPU per message allows at most {ceiling:,.0f} messages/s on one core")
        print(f"    peak RSS of the mailer: {r.peak_mb:.0f} MB (while loading {figures.load_peak_mb:.0f} MB)")
        if r.mailer.seconds > 0:
            best = max(best, n / r.mailer.seconds)
    verdict = "met" if best >= TARGET_PER_SECOND else "MISSED"
    print(f"  target ≥ {TARGET_PER_SECOND} messages/s, every recipient's consent checked: {verdict}", end="")
    print(f" (best {best:,.0f}/s, first → last message at the sink)")
    for path in figures.profiles:
        print_profile(path)
    return ok


def connection_counts(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("a number, or numbers separated by commas") from None
    if not values or not all(1 <= v <= 100 for v in values):
        raise argparse.ArgumentTypeError("each value 1 … 100 (MAILER_SMTP_CONNECTIONS)")
    return values


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--members", type=int, default=23_000, help="consenting members, all in the audience (23,000)")
    parser.add_argument(
        "--connections",
        type=connection_counts,
        default=[SERVICE_DEFAULT_CONNECTIONS],
        help=f"MAILER_SMTP_CONNECTIONS; several (4,8,16) run one campaign each ({SERVICE_DEFAULT_CONNECTIONS})",
    )
    parser.add_argument(
        "--sink", choices=["process", "thread"], default="process", help="where the SMTP sink runs (process)"
    )
    parser.add_argument("--profile", type=Path, help="run the mailer under cProfile and phase timers, output here")
    args = parser.parse_args()
    if args.members < 1:
        parser.error("--members must be at least 1")
    if args.profile:
        args.profile = args.profile.resolve()
        args.profile.mkdir(parents=True, exist_ok=True)
    return args


async def main() -> int:
    args = arguments()
    figures = await measure(Stack.from_env(), args, progress=sys.stderr.isatty())
    return 0 if report(figures, args) else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["sink-child"]:
        sink_child()
    elif sys.argv[1:2] == ["mailer-child"]:
        mailer_child(Path(sys.argv[2]))
    else:
        raise SystemExit(asyncio.run(main()))
