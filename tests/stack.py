"""The real components the tests run against, as `scripts/test` started them.

Each test gets its own topic prefix and its own database, so tests never see
each other's messages or rows while sharing one broker and one server.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from alumni_kit.auth import TokenSigner, parse_keys
from alumni_kit.keyring_http import HttpKeyRing
from alumni_kit.shredding import open_batch

ROOT = Path(__file__).resolve().parents[1]
# Every service of a test signs and verifies with this (also the service tokens for keys).
SIGNING_KEYS = "test:a-test-signing-key-of-enough-length"
# The pepper of erased members' anonymous keys: the analytics service's in the tests
# (tests/conftest.py) and the pure recomputation's (tests/analytics_streams.py).
ANALYTICS_PEPPER = b"tests-only-analytics-erasure-pepper"


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run the tests with scripts/test, which starts Kafka and PostgreSQL")
    return value


@dataclass(frozen=True)
class Stack:
    bootstrap: str
    pg_host: str
    pg_port: int
    pg_admin_password: str
    run_dir: Path

    @classmethod
    def from_env(cls) -> Stack:
        return cls(
            bootstrap=env("ALUMNI_TEST_KAFKA"),
            pg_host="127.0.0.1",
            pg_port=int(env("ALUMNI_TEST_PG_PORT")),
            pg_admin_password=env("ALUMNI_TEST_PG_PASSWORD"),
            run_dir=Path(env("ALUMNI_TEST_RUN_DIR")),
        )

    def admin_dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:{self.pg_admin_password}@{self.pg_host}:{self.pg_port}/{database}"

    def service_dsn(self, role: str, database: str) -> str:
        return f"postgresql://{role}:{role}-dev@{self.pg_host}:{self.pg_port}/{database}"

    async def create_database(self, owner: str) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(self.admin_dsn())
        try:
            await conn.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        finally:
            await conn.close()
        return name

    def restart_postgres(self, down_seconds: float) -> None:
        envs = {**os.environ, "RUN_DIR": str(self.run_dir), "PG_PORT": str(self.pg_port)}
        subprocess.run([str(ROOT / "scripts" / "postgres"), "stop"], check=True, env=envs)
        time.sleep(down_seconds)
        subprocess.run([str(ROOT / "scripts" / "postgres"), "start"], check=True, env=envs)

    def _kafka(self, command: str) -> None:
        # The same run dir, ports and version as scripts/test started it with: the broker comes
        # back with its own data (topics, offsets, consumer groups, producer state).
        envs = {
            **os.environ,
            "RUN_DIR": str(self.run_dir),
            "KAFKA_PORT": self.bootstrap.rpartition(":")[2],
            "KAFKA_CONTROLLER_PORT": env("KAFKA_CONTROLLER_PORT"),
        }
        subprocess.run([str(ROOT / "scripts" / "kafka"), command], check=True, env=envs)

    def kill_kafka(self) -> None:
        """SIGKILL the broker (`scripts/kafka kill`): no clean shutdown, as in a crash."""
        self._kafka("kill")

    def start_kafka(self) -> None:
        """Start the broker again on its data; returns once it serves clients."""
        self._kafka("start")


@dataclass
class ServiceProcess:
    """A service run the way an operator runs it: its own process, configured by environment."""

    module: str
    env: dict[str, str]
    http_port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None)
    # Services this one calls at run time (membership, for keys): started with it if not running.
    requires: list[ServiceProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        for needed in self.requires:
            if not needed.running:
                needed.start()
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module], env={**os.environ, **self.env}, stdout=log, stderr=log
        )

    async def wait_ready(self, timeout: float = 60) -> None:
        """Ready, and so is every service it calls: a request that needs membership's keys
        a moment after start would otherwise meet a membership still starting (a 503)."""
        for needed in self.requires:
            await needed.wait_ready(timeout)
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                assert self.proc is not None
                assert self.proc.poll() is None, f"{self.module} exited\n{self.tail()}"
                try:
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"{self.module} not ready within {timeout}s\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def service_process(stack: Stack, name: str, db: str, prefix: str, group: str, log_path: Path) -> ServiceProcess:
    """Service `name` on its own free port, against database `db` and topics under `prefix`."""
    port = free_port()
    env_prefix = name.upper() + "_"
    env = {
        f"{env_prefix}KAFKA_BOOTSTRAP": stack.bootstrap,
        f"{env_prefix}DATABASE_URL": stack.service_dsn(name, db),
        f"{env_prefix}HTTP_PORT": str(port),
        f"{env_prefix}GROUP_ID": group,
        f"{env_prefix}PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "ALUMNI_TOPIC_PREFIX": prefix,
    }
    return ServiceProcess(module=name, env=env, http_port=port, log_path=log_path)


def membership_process(stack: Stack, db: str, prefix: str, group: str, log_path: Path) -> ServiceProcess:
    return service_process(stack, "membership", db, prefix, group, log_path)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def publish(
    bootstrap: str,
    topic: str,
    messages: list[tuple[bytes | None, bytes | None]],
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    """A plain Kafka producer, as another USN system would use (none of the service's code)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=k, value=v, headers=headers) for k, v in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def event_bytes(event: dict[str, Any]) -> tuple[bytes, bytes]:
    return str(event["subject"]).encode(), json.dumps(event, ensure_ascii=False).encode()


async def opened_values(records: list[Any], key_holder: ServiceProcess) -> list[dict[str, Any] | None]:
    """The records' values as JSON with sealed personal data opened by membership's keys
    (None for a record whose subject was erased: that is what a replay sees)."""
    ring = HttpKeyRing(key_holder.url, TokenSigner(parse_keys(SIGNING_KEYS)), "tests", cache_seconds=0)
    try:
        values = await open_batch([r.value for r in records], ring)
    finally:
        await ring.close()
    out: list[dict[str, Any] | None] = []
    for value in values:
        assert not isinstance(value, Exception), value
        out.append(json.loads(value) if value is not None else None)
    return out


async def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 60) -> list[Any]:
    """Every record of `topic` from the beginning, once at least `expected` arrived."""
    # No group: the consumer is assigned every partition and starts at the earliest offset.
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for recs in batch.values():
                records.extend(recs)
        return records
    finally:
        await consumer.stop()


async def consumer_lags(bootstrap: str, group: str, topic_prefix: str) -> dict[str, int]:
    """Per consumer group of a service (`<group>.<topic>`, see alumni_kit.runtime): how many records
    of its topic are past its committed offsets (a partition it never committed counts from its start)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await reader.start()
    try:
        groups = sorted(g[0] for g in await admin.list_consumer_groups() if str(g[0]).startswith(group + "."))
        lags: dict[str, int] = {}
        for name in groups:
            topic = topic_prefix + name[len(group) + 1 :]
            [meta] = await admin.describe_topics([topic])
            partitions = [TopicPartition(topic, p["partition"]) for p in meta["partitions"]]
            ends = await reader.end_offsets(partitions)
            starts = await reader.beginning_offsets(partitions)
            committed = await admin.list_consumer_group_offsets(name, partitions=partitions)
            lags[name] = sum(
                ends[tp] - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else starts[tp])
                for tp in partitions
            )
        return lags
    finally:
        await reader.stop()
        await admin.close()


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 60, what: str = "condition") -> Any:
    """Poll `check` until it returns a truthy value; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


async def group_lag(bootstrap: str, group: str, topic: str) -> int:
    """Records of `topic` that consumer group `group` has not committed (all, where it committed none)."""
    partitions = await partitions_of(bootstrap, topic)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return sum(end - max(committed[tp].offset, 0) if tp in committed else end for tp, end in ends.items())


async def records_now(bootstrap: str, topic: str) -> list[Any]:
    """Every record on `topic` now, from each partition's start to its end offset (no group)."""
    partitions = await partitions_of(bootstrap, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        return [r for r in records if r.offset < ends[TopicPartition(r.topic, r.partition)]]
    finally:
        await consumer.stop()


async def partitions_of(bootstrap: str, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
        return [TopicPartition(topic, p["partition"]) for p in sorted(described["partitions"], key=_partition_no)]
    finally:
        await admin.close()


def _partition_no(p: dict[str, Any]) -> int:
    return int(p["partition"])
