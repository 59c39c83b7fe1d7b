"""What one service process holds, built by its app factory and opened in the lifespan.

Nothing here connects at import or construction: `start()` opens the pool,
applies migrations, starts the producer, the outbox relay and the FastStream
broker's subscribers; `stop()` closes them in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage

from alumni_kit.auth import TokenSigner, parse_keys
from alumni_kit.batch_parser import tolerant_batch_parser
from alumni_kit.consumer import BatchHandler, EventConsumer
from alumni_kit.db import KIT_MIGRATIONS, apply_migrations, create_pool
from alumni_kit.gc_tuning import tune_gc_for_batches
from alumni_kit.kafka import idempotent_producer
from alumni_kit.keyring_http import HttpKeyRing
from alumni_kit.logs import where_it_failed
from alumni_kit.metrics import KitMetrics
from alumni_kit.outbox import OutboxRelay
from alumni_kit.retry import retry_transient
from alumni_kit.settings import ServiceSettings
from alumni_kit.shredding import KeyRing
from usn_schemas.envelope import CloudEvent

log = logging.getLogger(__name__)
# How long a stop waits for the broker (final offset commits, flushing the producer).
STOP_GRACE_SECONDS = 5.0


async def _raw_body(message: Any, original: Any = None) -> Any:
    # Parsing is ours (EventConsumer): bad input must reach the DLQ, not fail in the framework.
    return message.body


@dataclass(frozen=True)
class Subscription:
    topic: str
    group: str
    contracts: dict[str, type[CloudEvent]]
    handler: BatchHandler
    # How long the broker may hold this topic's idle fetches (default: the service's
    # fetch_max_wait_ms). A topic where a second's delay is harmless should wait long:
    # every idle consumer polling every 50 ms costs the broker and the process CPU.
    fetch_max_wait_ms: int | None = None
    # Forward compatibility for a consumer of every topic (analytics): a message of a
    # `type` the topic's contracts do not know is counted (alumni_messages_consumed,
    # outcome unknown_type) and skipped instead of dead-lettered.
    skip_unknown_types: bool = False


# Builds a key ring from a way to get the runtime's pool (open only once the runtime started).
KeyRingFactory = Callable[[Callable[[], asyncpg.Pool]], KeyRing]


@dataclass
class _Uncommitted:
    """Offsets one subscription has applied but not yet committed to Kafka."""

    consumer: Any  # the subscriber's AIOKafkaConsumer
    offsets: dict[TopicPartition, int] = field(default_factory=dict)

    def note(self, records: tuple[Any, ...]) -> None:
        for r in records:
            where = TopicPartition(r.topic, r.partition)
            self.offsets[where] = max(self.offsets.get(where, 0), r.offset + 1)


class ServiceRuntime:
    def __init__(
        self,
        name: str,
        settings: ServiceSettings,
        migrations: Path,
        shared: dict[str, Path] | None = None,
        keyring: KeyRingFactory | None = None,
    ) -> None:
        """`shared`: migration scopes of kit pieces the service opts into (e.g. the consent view);
        `keyring`: how this service gets subject keys, given the runtime's pool (default:
        from membership over HTTP; membership itself reads its own table)."""
        self.name, self.settings = name, settings
        self.migrations = {"kit": KIT_MIGRATIONS, **(shared or {}), name: migrations}
        self.metrics = KitMetrics()
        self.broker = KafkaBroker(
            settings.kafka_bootstrap,
            client_id=name,
            apply_types=False,
            log_level=logging.DEBUG,  # one line per batch is noise at INFO
            logger=logging.getLogger("alumni.broker"),  # our log format, not FastStream's own handler
        )
        self._subscriptions: list[Subscription] = []
        self._consumers: dict[str, EventConsumer] = {}
        self._last_commit: dict[str, float] = {}
        self._uncommitted: dict[str, _Uncommitted] = {}
        self._rewound: dict[str, float] = {}  # topic -> when its last batch was rewound
        self._commit_task: asyncio.Task[None] | None = None
        self._lag_task: asyncio.Task[None] | None = None
        self._subscribers: dict[str, Any] = {}  # topic -> its FastStream subscriber (holds the AIOKafkaConsumer)
        self._applied: dict[TopicPartition, int] = {}  # next offset this process applied, per partition
        self._lag_reported: dict[str, set[int]] = {}  # topic -> partitions with a lag series
        self._pool: asyncpg.Pool | None = None
        self._producer: AIOKafkaProducer | None = None
        self._relay: OutboxRelay | None = None
        self._relay_task: asyncio.Task[None] | None = None
        # Opens sealed personal data in consumed events.
        self.keyring: KeyRing = (
            keyring(lambda: self.pool)
            if keyring is not None
            else HttpKeyRing(
                settings.membership_url,
                TokenSigner(parse_keys(settings.signing_keys.get_secret_value())),
                name,
                settings.key_cache_seconds,
            )
        )

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the service is not started")
        return self._pool

    def subscribe(self, sub: Subscription, schema: type[CloudEvent], description: str) -> None:
        """Consume `sub.topic` in batches with the kit's guarantees; also documents it in AsyncAPI.

        Each topic gets its own consumer group, `<group>.<topic>`: consumers of several
        topics in one group would rebalance each other at every start (seconds each, one
        after the other), and lag and offsets are per topic anyway.
        """
        sub = replace(sub, topic=self.settings.topic_prefix + sub.topic, group=f"{sub.group}.{sub.topic}")
        self._subscriptions.append(sub)

        async def on_batch(body: list[Any]) -> None:
            # The raw records (partition, offset, headers) live in the message context.
            message: KafkaMessage = self.broker.context.get_local("message")
            await self._consume(sub.topic, message)

        # The AsyncAPI generator reads the body's model from the annotation.
        on_batch.__annotations__["body"] = list[schema]  # type: ignore[valid-type]
        subscriber = self.broker.subscriber(
            sub.topic,
            group_id=sub.group,
            batch=True,
            ack_policy=AckPolicy.MANUAL,
            decoder=_raw_body,
            parser=tolerant_batch_parser,
            max_records=self.settings.batch_max_records,
            batch_timeout_ms=self.settings.batch_timeout_ms,
            fetch_max_wait_ms=sub.fetch_max_wait_ms or self.settings.fetch_max_wait_ms,
            auto_offset_reset="earliest",
            title=f"{sub.topic}:{sub.group}",
            description=description,
        )
        subscriber(on_batch)
        self._subscribers[sub.topic] = subscriber

    def publishes(self, topic: str, schema: type[CloudEvent], description: str) -> None:
        """Document a topic this service writes (through its outbox) in AsyncAPI."""
        self.broker.publisher(
            self.settings.topic_prefix + topic, schema=schema, title=f"{topic}:{self.name}", description=description
        )

    async def _consume(self, topic: str, message: KafkaMessage) -> None:
        records = message.raw_message if isinstance(message.raw_message, tuple) else (message.raw_message,)
        try:
            await self._consumers[topic].handle_batch(records)
        except Exception as exc:
            # The consumer attributes every failure to a record and dead-letters it, so
            # only a failure to dead-letter (or a bug in the kit) gets here. Rewind so
            # nothing is skipped; the metric and /readyz's neighbours make it visible.
            log.error("unexpected failure on %s (%s); rewinding the batch", topic, where_it_failed(exc))
            self.metrics.rewinds.labels(topic).inc()
            self._rewound[topic] = time.monotonic()
            await message.nack()
            await asyncio.sleep(1)
            return
        self._rewound.pop(topic, None)
        pending = self._uncommitted.setdefault(topic, _Uncommitted(message.consumer))
        pending.consumer = message.consumer
        pending.note(records)
        for r in records:
            where = TopicPartition(r.topic, r.partition)
            self._applied[where] = max(self._applied.get(where, 0), r.offset + 1)
        if time.monotonic() - self._last_commit.get(topic, 0.0) >= self.settings.commit_interval_ms / 1000:
            await self._commit(topic)

    async def _commit(self, topic: str) -> None:
        """Commit the offsets `topic`'s consumer has applied, partition by partition.

        Effects are already committed with their inbox entries, so a later offset
        commit only means a crash redelivers a little more, which the inbox drops;
        meanwhile a trickle of events saves a broker round trip per batch. Explicit
        offsets, not the consumer's position: the flush may run while a batch that
        was fetched is still being applied.
        """
        pending = self._uncommitted.get(topic)
        if pending is None:
            return
        assigned = pending.consumer.assignment()
        # A partition taken away by a rebalance is its new owner's to commit.
        for gone in [tp for tp in pending.offsets if tp not in assigned]:
            del pending.offsets[gone]
        if not pending.offsets:
            return
        snapshot = dict(pending.offsets)
        try:
            await pending.consumer.commit(snapshot)
        except Exception as exc:  # e.g. a rebalance: the inbox makes the redelivery harmless
            log.warning("offset commit on %s failed (%s); events will be redelivered", topic, type(exc).__name__)
            return
        self._last_commit[topic] = time.monotonic()
        for tp, offset in snapshot.items():
            if pending.offsets.get(tp) == offset:  # not advanced by a batch applied meanwhile
                del pending.offsets[tp]

    async def _flush_commits(self) -> None:
        """Commit applied offsets also when no further batch arrives: an idle partition
        shows lag 0 within the commit interval, and erasure and lag figures rely on it."""
        interval = max(self.settings.commit_interval_ms, 50) / 1000
        while True:
            await asyncio.sleep(interval)
            for topic in list(self._uncommitted):
                if time.monotonic() - self._last_commit.get(topic, 0.0) >= interval:
                    await self._commit(topic)

    async def _watch_lag(self) -> None:
        """Measure every consumer's lag each `lag_interval_seconds` (a stuck consumer's grows)."""
        while True:
            await asyncio.sleep(self.settings.lag_interval_seconds)
            for topic, subscriber in self._subscribers.items():
                try:
                    await self._measure_lag(topic, subscriber.consumer)
                except Exception as exc:  # the broker is down or a rebalance runs: the next round tries again
                    log.debug("lag of %s not measured (%s)", topic, type(exc).__name__)

    async def _measure_lag(self, topic: str, consumer: Any) -> None:
        """Set `alumni_consumer_lag_messages` for the partitions of `topic` assigned here.

        The position is what this process applied (ahead of the committed offset by
        up to a commit interval); for a partition it has applied nothing of since it
        got it, the group's committed offset (or the partition's start, before any commit).
        """
        assigned = sorted(consumer.assignment() if consumer is not None else (), key=lambda tp: tp.partition)
        for tp in [tp for tp in self._applied if tp.topic == topic and tp not in assigned]:
            del self._applied[tp]  # another replica's now: what it applies is not seen here
        ends = await consumer.end_offsets(assigned) if assigned else {}
        for tp in assigned:
            position = self._applied.get(tp)
            if position is None:
                position = await consumer.committed(tp)
                if position is None:
                    position = (await consumer.beginning_offsets([tp]))[tp]
                # Kept while the partition is ours: only this process moves it on (one
                # offsets request per partition, not one per round on an idle topic).
                self._applied[tp] = max(self._applied.get(tp, 0), position)
            self.metrics.consumer_lag.labels(topic, str(tp.partition)).set(max(0, ends[tp] - position))
        reported = {tp.partition for tp in assigned}
        for gone in self._lag_reported.get(topic, set()) - reported:
            with contextlib.suppress(KeyError):
                self.metrics.consumer_lag.remove(topic, str(gone))
        self._lag_reported[topic] = reported

    async def start(self) -> None:
        s = self.settings
        if "local-development-only" in s.signing_keys.get_secret_value():
            log.warning("ALUMNI_SIGNING_KEYS is not set: tokens are signed with the public development key")
        self._pool = await retry_transient(
            lambda: create_pool(s.database_url, s.db_pool_max), self.metrics, "db_connect"
        )
        async with self._pool.acquire() as conn:
            await apply_migrations(conn, self.migrations)
        self._producer = idempotent_producer(s.kafka_bootstrap, f"{self.name}-producer")
        await retry_transient(self._producer.start, self.metrics, "kafka_connect")
        for sub in self._subscriptions:
            self._consumers[sub.topic] = EventConsumer(
                topic=sub.topic,
                group=sub.group,
                contracts=sub.contracts,
                handler=sub.handler,
                pool=self._pool,
                producer=self._producer,
                metrics=self.metrics,
                keyring=self.keyring,
                max_attempts=s.consumer_max_attempts,
                skip_unknown_types=sub.skip_unknown_types,
            )
        self._relay = OutboxRelay(
            self._pool,
            self._producer,
            self.metrics,
            batch_size=s.outbox_batch_size,
            poll_seconds=s.outbox_poll_seconds,
            topic_prefix=s.topic_prefix,
            max_attempts=s.outbox_max_attempts,
            producer_factory=lambda: idempotent_producer(s.kafka_bootstrap, f"{self.name}-outbox-relay"),
        )
        self._relay_task = asyncio.create_task(self._relay.run(), name=f"{self.name}-outbox-relay")
        await self.broker.start()
        self._commit_task = asyncio.create_task(self._flush_commits(), name=f"{self.name}-offset-commits")
        self._lag_task = asyncio.create_task(self._watch_lag(), name=f"{self.name}-consumer-lag")
        tune_gc_for_batches()
        log.info("%s started", self.name)

    async def stop(self) -> None:
        if self._lag_task:
            self._lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lag_task
        if self._commit_task:
            self._commit_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._commit_task
            # A clean stop leaves no lag behind, but a broker that is down must not hold the
            # stop: what is not committed is redelivered, and the inbox drops it.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_GRACE_SECONDS):
                    for topic in list(self._uncommitted):
                        await self._commit(topic)
        await self.broker.stop()
        if self._relay and self._relay_task:
            self._relay.stop()
            await self._relay_task
        if self._producer:
            # Flushing waits for the broker; unacknowledged dead letters are redone after a restart.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._producer.stop(), STOP_GRACE_SECONDS)
        if isinstance(self.keyring, HttpKeyRing):
            await self.keyring.close()
        if self._pool:
            await self._pool.close()
        log.info("%s stopped", self.name)

    async def readiness(self) -> dict[str, bool]:
        checks = {"database": False, "kafka": False}
        if self._pool is not None:
            try:
                async with asyncio.timeout(2):
                    checks["database"] = await self._pool.fetchval("SELECT true")
            except Exception:
                pass
        checks["kafka"] = self._producer is not None and await self._broker_answers()
        # A consumer whose batch was rewound and has not got past it since is not advancing.
        checks["consumers"] = not self._rewound
        return checks

    async def _broker_answers(self) -> bool:
        assert self._producer is not None
        try:
            async with asyncio.timeout(2):
                await self._producer.client.fetch_all_metadata()
            return True
        except Exception:
            return False
