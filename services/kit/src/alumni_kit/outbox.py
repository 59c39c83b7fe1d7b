"""Transactional outbox: the state change and the outgoing event commit together.

`OutboxMessage`s are written with the business transaction's connection; the
`OutboxRelay` publishes them after commit with an idempotent producer
(`acks=all`) and deletes them once the broker acknowledged every one. A crash
between publish and delete republishes: at-least-once, and consumers de-duplicate
by event id (the inbox).

A row the broker refuses for what it is (too large for its topic, an invalid
record) would block its partition for ever; after `max_attempts` refusals it is
moved to `outbox_quarantine` (kept whole, listed and put back by
`python -m usn_tools.outbox`) and the rows behind it are published.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka import errors as kafka_errors
from asyncpg.pool import PoolConnectionProxy
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from alumni_kit.db import Conn
from alumni_kit.errors import is_transient
from alumni_kit.kafka import MAX_REQUEST_BYTES, idempotent_producer
from alumni_kit.logs import where_it_failed
from alumni_kit.metrics import KitMetrics
from alumni_kit.partitioning import partition_of
from alumni_kit.shredding import SubjectKey, personal_data_fields, seal_event
from alumni_kit.tracing import context_of, producer_attributes, start_span, tracing_enabled
from usn_schemas.envelope import CloudEvent

log = logging.getLogger(__name__)

# Only one relay per database publishes at a time, so replicas cannot reorder
# the facts of one entity by racing each other.
_RELAY_LOCK = 7_340_002
OUTBOX_CHANNEL = "outbox"
_BACKLOG = "SELECT coalesce(max(id) - min(id) + 1, 0) FROM outbox"
# The oldest row is the lowest id (rows leave in id order): one primary-key lookup.
_OLDEST_AGE = "SELECT coalesce(extract(epoch FROM now() - (SELECT created_at FROM outbox ORDER BY id LIMIT 1)), 0)"


class RowTooLargeToSendError(Exception):
    """A row above the producer's request limit: refused by the relay itself, never sent.

    A request above the broker's socket.request.max.bytes makes it close the
    connection, which the producer would retry for ever, so the refusal is ours.
    """

    description = f"larger than the producer's request limit ({MAX_REQUEST_BYTES} bytes); not sent"


# Refusals of one row before it is quarantined (<SVC>_OUTBOX_MAX_ATTEMPTS).
DEFAULT_MAX_ATTEMPTS = 3
# Broker answers that are about the record itself: sending it again as it is cannot
# succeed until it or the topic's settings change. aiokafka 0.14 knows no class for
# INVALID_RECORD (87: e.g. a broker-side validation failed) and reports it as UnknownError.
_REFUSALS: tuple[type[BaseException], ...] = (
    kafka_errors.MessageSizeTooLargeError,  # larger than the topic's max.message.bytes
    kafka_errors.RecordTooLargeError,
    kafka_errors.RecordListTooLargeError,
    kafka_errors.CorruptRecordException,
    kafka_errors.InvalidTimestampError,
    kafka_errors.UnknownError,
    RowTooLargeToSendError,
)
# The producer's own state is out of step with the broker's: a fresh producer
# fixes it, and no row is to blame.
_OUT_OF_STEP: tuple[type[BaseException], ...] = (
    kafka_errors.OutOfOrderSequenceNumber,
    kafka_errors.InvalidProducerEpoch,
    kafka_errors.InvalidProducerIdMapping,
    kafka_errors.UnknownProducerId,
    kafka_errors.ProducerFenced,
)


_QUARANTINE = """
WITH moved AS (DELETE FROM outbox WHERE id = $1 RETURNING *)
INSERT INTO outbox_quarantine (id, topic, key, value, headers, created_at, attempts, error_class, error_reason)
SELECT id, topic, key, value, headers, created_at, $2, $3, $4 FROM moved
"""
_QUARANTINE_COUNTS = "SELECT topic, count(*) AS n FROM outbox_quarantine GROUP BY topic"
# How often a relay waiting for the broker's acknowledgements says so (`_watched`).
_WAIT_REPORT_SECONDS = 2.0
# How long stopping a producer of the relay's own may take (its unsent batches are still outbox rows).
_STOP_SECONDS = 5.0
T = TypeVar("T")


class RelayStoppedError(Exception):
    """The relay was stopped in the middle of a round; the round's rows stay in the outbox."""


@dataclass(frozen=True)
class OutboxMessage:
    topic: str
    key: str
    event: CloudEvent
    headers: dict[str, str] = field(default_factory=dict)
    # The subject's key: personal fields are sealed with it before they leave the
    # service (crypto-shredding, see shredding.py). Required when there are any.
    seal: SubjectKey | None = None

    def __post_init__(self) -> None:
        if self.seal is None and _holds_personal_data(self.event):
            raise ValueError(f"an event for {self.topic} holds personal data and must be sealed with the subject's key")

    def record(self) -> tuple[str, bytes, bytes, str]:
        value = seal_event(self.event, self.seal) if self.seal is not None else self.event.to_json()
        return (self.topic, self.key.encode(), value, json.dumps(self.headers))


def _holds_personal_data(event: CloudEvent) -> bool:
    # A contract may say that this one message is about no person (a mail to a role
    # address, usn_schemas.mail): there is no subject whose key could seal it.
    if getattr(event.data, "is_to_a_role", False) is True:
        return False
    return any(getattr(event.data, name, None) is not None for name in personal_data_fields(event))


async def add_to_outbox(conn: Conn, messages: list[OutboxMessage]) -> None:
    """Write `messages` in the caller's transaction (COPY: one round trip per batch).

    The NOTIFY is delivered when the transaction commits and wakes the relay at once.
    """
    if messages:
        await conn.copy_records_to_table(
            "outbox", records=[m.record() for m in messages], columns=["topic", "key", "value", "headers"]
        )
        await conn.execute(f"NOTIFY {OUTBOX_CHANNEL}")


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        metrics: KitMetrics,
        *,
        batch_size: int,
        poll_seconds: float,
        topic_prefix: str = "",
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        producer_factory: Callable[[], AIOKafkaProducer] | None = None,
        quarantine_gauge_seconds: float = 30.0,
    ) -> None:
        """`max_attempts`: refusals of one row by the broker before it is quarantined.

        `producer_factory` makes the fresh producer the relay switches to after a
        refusal (see `_renew_producer`); by default one like `idempotent_producer`
        on `producer`'s bootstrap servers. `producer` itself is shared (dead
        letters) and never stopped here. `quarantine_gauge_seconds`: how often each
        replica re-reads the quarantine's size for its gauge (a row put back by
        `usn_tools.outbox retry` shows within this; a quarantine by this relay at once).
        """
        self._prefix = topic_prefix  # rows hold logical topic names; the prefix picks the cluster's copy
        self._pool = pool
        self._producer = producer
        self._own_producer: AIOKafkaProducer | None = None
        self._make_producer = producer_factory or (lambda: idempotent_producer(_bootstrap_of(producer), "outbox-relay"))
        self._metrics = metrics
        self._batch_size = batch_size
        self._poll = poll_seconds
        self._max_attempts = max_attempts
        # Row id -> refusals so far. Kept in memory: a restart (or another replica
        # taking the lock) only starts counting again, and a row is refused at once.
        self._refusals: dict[int, int] = {}
        self._moved_aside: list[tuple[asyncpg.Record, str, int]] = []  # in the round's transaction
        self._quarantine_every = quarantine_gauge_seconds
        self._quarantine_checked = -math.inf
        self._quarantine_topics: set[str] = set()
        self._stopping = asyncio.Event()
        self._work = asyncio.Event()
        self._listener: PoolConnectionProxy[asyncpg.Record] | None = None
        self._spans: dict[int, Span] = {}  # row id -> its publish span, in the round under way
        self._offsets: dict[int, int] = {}  # row id -> offset the broker gave it, in the round under way

    async def run(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                await self._listen()
                published = await self.publish_once()
                await self._refresh_quarantine_gauge()
                backoff = 0.1
            except RelayStoppedError:
                break
            except Exception as exc:  # the relay must outlive broker and database outages
                if not is_transient(exc):
                    log.error("outbox relay failed (%s); retrying", where_it_failed(exc))
                else:
                    log.warning("outbox relay: %s; retrying in %.1fs", type(exc).__name__, backoff)
                self._metrics.transient_retries.labels("outbox_relay").inc()
                await self._unlisten()
                await self._wait(self._stopping, backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if published < self._batch_size or self._refusals:
                # NOTIFY wakes us on new rows; the poll is a fallback for a lost notification
                # and spaces the attempts of a row the broker refused.
                await self._wait(self._work, self._poll)
                self._work.clear()
        await self._unlisten()
        if self._own_producer is not None:
            # A producer's stop waits until its pending batches are sent: for ever while the
            # broker is down. What it held is still in the outbox, so the stop is bounded.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._own_producer.stop(), timeout=_STOP_SECONDS)

    def stop(self) -> None:
        self._stopping.set()
        self._work.set()

    async def _wait(self, event: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=seconds)

    async def _listen(self) -> None:
        if self._listener is None or self._listener.is_closed():
            self._listener = await self._pool.acquire()
            await self._listener.add_listener(OUTBOX_CHANNEL, self._notified)

    def _notified(self, *_: object) -> None:
        self._work.set()

    async def _unlisten(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):  # a dead connection cannot be told anything
                await listener.remove_listener(OUTBOX_CHANNEL, self._notified)
            with contextlib.suppress(Exception):
                await self._pool.release(listener)

    async def publish_once(self) -> int:
        """Publish one batch in id order; returns how many were published."""
        self._moved_aside = []
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _RELAY_LOCK):
                return 0
            # Losing this DELETE in a server crash only republishes what consumers
            # de-duplicate anyway; skipping the WAL flush halves the relay's cost per round.
            await conn.execute("SET LOCAL synchronous_commit = off")
            rows = await conn.fetch(
                "SELECT id, topic, key, value, headers FROM outbox ORDER BY id LIMIT $1", self._batch_size
            )
            if not rows:
                self._metrics.outbox_backlog.set(0)
                self._metrics.outbox_oldest_age.set(0)
                return 0
            published = await self._watched(self._publish(conn, rows))
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in published])
            # A full batch means more may wait. Rows leave in id order, so the id span
            # estimates the backlog from the primary key alone (a count(*) would scan
            # the table on every round of a backfill).
            backlog = await conn.fetchval(_BACKLOG) if len(rows) == self._batch_size or self._refusals else 0
            oldest = float(await conn.fetchval(_OLDEST_AGE)) if backlog else 0.0
        self._metrics.outbox_backlog.set(backlog)
        self._metrics.outbox_oldest_age.set(oldest)
        for topic, count in collections.Counter(row["topic"] for row in published).items():
            self._metrics.produced.labels(topic).inc(count)
        self._report_quarantined()
        return len(published)

    async def _watched(self, publishing: Coroutine[Any, Any, T]) -> T:
        """Await a round's sends and acknowledgements, saying so while the broker does not answer.

        While the broker is unreachable the producer keeps the round's batches and
        resends them itself (an idempotent producer never expires a batch; a copy
        sent from here would only be a duplicate), so the relay waits. Not silently:
        every `_WAIT_REPORT_SECONDS` the backlog gauge is refreshed and the wait is
        counted as a transient retry of `outbox_relay`, what the outbox alerts watch
        (without this the gauge kept its last value, often 0, through a broker
        outage). A stop abandons the round: its rows stay in the outbox, for this
        relay's successor to publish.
        """
        task = asyncio.ensure_future(publishing)
        stopping = asyncio.ensure_future(self._stopping.wait())
        waited = 0.0
        try:
            while not (await asyncio.wait({task, stopping}, timeout=_WAIT_REPORT_SECONDS))[0]:
                waited += _WAIT_REPORT_SECONDS
                await self._report_waiting(waited)
            if not task.done():
                raise RelayStoppedError("stopped while waiting for the broker")
        finally:
            for pending in (task, stopping):
                pending.cancel()  # nothing for one that is done
        result = task.result()  # a round that failed meanwhile (e.g. a send timed out) is tried again by run()
        if waited:
            log.info("outbox relay: the broker acknowledged after %.0f s", waited)
        return result

    async def _report_waiting(self, waited: float) -> None:
        self._metrics.transient_retries.labels("outbox_relay").inc()
        # Another connection: the round's own may be in use by a quarantine. An estimate
        # that cannot be had now (the database is down too) waits for the next report.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_WAIT_REPORT_SECONDS):
                self._metrics.outbox_backlog.set(await self._pool.fetchval(_BACKLOG))
                self._metrics.outbox_oldest_age.set(float(await self._pool.fetchval(_OLDEST_AGE)))
        if waited <= _WAIT_REPORT_SECONDS:
            log.warning("outbox relay: no acknowledgement from the broker for %.0f s; the producer retries", waited)

    async def _publish(self, conn: Conn, rows: list[asyncpg.Record]) -> list[asyncpg.Record]:
        """Publish `rows`; returns those the broker acknowledged.

        The fast way is whole record batches per partition (`_send_batches`). A
        partition ("lane") whose batch the broker refused, or which holds a row it
        refused before, is sent again row by row on a fresh producer, so that the
        row at fault is found and counted (`_send_one_by_one`); the other lanes
        keep their batches.
        """
        lanes = await self._lanes(rows)
        self._start_publish_spans(lanes)
        try:
            return await self._publish_lanes(conn, lanes)
        finally:
            self._end_publish_spans()

    def _start_publish_spans(self, lanes: dict[tuple[str, int], list[asyncpg.Record]]) -> None:
        """A `publish <topic>` span per row that carries a trace context (only with tracing on);
        the record is sent with the span's context, so its consumer continues from here."""
        self._spans = {}
        if not tracing_enabled():
            return
        for (topic, partition), lane in lanes.items():
            for row in lane:
                stored = json.loads(row["headers"])
                if "traceparent" in stored:
                    attributes = producer_attributes(topic, partition)
                    self._spans[row["id"]] = start_span(f"publish {topic}", stored, SpanKind.PRODUCER, attributes)

    def _end_publish_spans(self) -> None:
        for row_id, span in self._spans.items():
            offset = self._offsets.get(row_id)
            if offset is None:
                span.set_status(Status(StatusCode.ERROR, "not acknowledged in this round"))
            else:
                span.set_attribute("messaging.kafka.offset", offset)
            span.end()
        self._spans, self._offsets = {}, {}

    def _record(self, row: asyncpg.Record) -> dict[str, Any]:
        span = self._spans.get(row["id"])
        return _record(row, context_of(span) if span is not None else None)

    def _acknowledged(self, rows: list[asyncpg.Record], metadata: Any) -> None:
        """Note the offsets of a batch the broker acknowledged (for the publish spans)."""
        base = getattr(metadata, "offset", None)
        if self._spans and isinstance(base, int):
            for i, row in enumerate(rows):
                self._offsets[row["id"]] = base + i

    async def _publish_lanes(
        self, conn: Conn, lanes: dict[tuple[str, int], list[asyncpg.Record]]
    ) -> list[asyncpg.Record]:
        careful = {
            slot for slot, lane in lanes.items() if any(r["id"] in self._refusals or _too_large(r) for r in lane)
        }
        fast = {slot: lane for slot, lane in lanes.items() if slot not in careful}
        published, failures = await self._send_batches(fast)
        other = [exc for exc in failures.values() if not (is_refusal(exc) or is_producer_out_of_step(exc))]
        if failures:
            # A refused batch leaves this producer's sequence for its partition ahead
            # of the broker's: every later send there would fail (OutOfOrderSequenceNumber).
            await self._renew_producer()
        if other:
            raise other[0]  # not the rows' fault: the whole round is tried again later
        careful |= set(failures)
        for slot in sorted(careful):
            published += await self._send_one_by_one(conn, slot, lanes[slot])
        return published

    async def _lanes(self, rows: list[asyncpg.Record]) -> dict[tuple[str, int], list[asyncpg.Record]]:
        """`rows` by the topic and partition they go to, each lane in id order.

        The partition is Kafka's default (murmur2) one of the key, as any client
        would choose.
        """
        lanes: dict[tuple[str, int], list[asyncpg.Record]] = {}
        partitions_of: dict[str, list[int]] = {}
        for row in rows:
            topic = self._prefix + row["topic"]
            if topic not in partitions_of:
                partitions_of[topic] = sorted(await self._producer.partitions_for(topic))
            lanes.setdefault((topic, partition_of(row["key"], partitions_of[topic])), []).append(row)
        return lanes

    async def _send_batches(
        self, lanes: dict[tuple[str, int], list[asyncpg.Record]]
    ) -> tuple[list[asyncpg.Record], dict[tuple[str, int], BaseException]]:
        """Hand each lane to the producer as ready-made record batches, in order.

        Returns the rows acknowledged and, per lane that failed, the first failure:
        a lane's rows count only up to its first failed batch.

        Building batches ourselves costs far less CPU per message than one
        `send()` each (measured: about 27,000 against 12,000 messages/s), which
        matters in a backfill where every member is one outgoing fact.
        """
        sent: list[tuple[tuple[str, int], list[asyncpg.Record], asyncio.Future[object]]] = []
        for slot, lane in lanes.items():
            batch, in_batch = self._producer.create_batch(), list[asyncpg.Record]()
            for row in lane:
                if batch.append(**self._record(row)) is None:
                    sent.append((slot, in_batch, await self._producer.send_batch(batch, slot[0], partition=slot[1])))
                    batch, in_batch = self._producer.create_batch(), []
                    if batch.append(**self._record(row)) is None:
                        raise ValueError(f"outbox message {row['id']} is larger than a producer batch")
                in_batch.append(row)
            sent.append((slot, in_batch, await self._producer.send_batch(batch, slot[0], partition=slot[1])))
        results = await asyncio.gather(*(future for _, _, future in sent), return_exceptions=True)
        published: list[asyncpg.Record] = []
        failures: dict[tuple[str, int], BaseException] = {}
        for (slot, in_batch, _), result in zip(sent, results, strict=True):
            if isinstance(result, BaseException):
                failures.setdefault(slot, result)
            elif slot not in failures:
                published += in_batch
                self._acknowledged(in_batch, result)
        return published, failures

    async def _send_one_by_one(
        self, conn: Conn, slot: tuple[str, int], lane: list[asyncpg.Record]
    ) -> list[asyncpg.Record]:
        """Send a lane row by row; a row refused `max_attempts` times is quarantined.

        A row refused fewer times holds back the rest of its lane until the next
        round, so that order is kept while the refusal may still be passing.
        """
        published: list[asyncpg.Record] = []
        for row in lane:
            try:
                if _too_large(row):
                    raise RowTooLargeToSendError()
                batch = self._producer.create_batch()
                batch.append(**self._record(row))
                self._acknowledged([row], await (await self._producer.send_batch(batch, slot[0], partition=slot[1])))
            except Exception as exc:
                if not (is_refusal(exc) or is_producer_out_of_step(exc)):
                    raise
                if not isinstance(exc, RowTooLargeToSendError):
                    await self._renew_producer()
                if is_producer_out_of_step(exc):
                    break  # the producer's state, not the row: try again next round
                attempts = self._refusals[row["id"]] = self._refusals.get(row["id"], 0) + 1
                if attempts < self._max_attempts:
                    log.warning(
                        "outbox row %d to %s refused by the broker (%s), attempt %d of %d; its partition waits",
                        row["id"],
                        row["topic"],
                        type(exc).__name__,
                        attempts,
                        self._max_attempts,
                    )
                    break
                await self._quarantine(conn, row, exc, attempts)
                continue
            self._refusals.pop(row["id"], None)
            published.append(row)
        return published

    async def _quarantine(self, conn: Conn, row: asyncpg.Record, exc: BaseException, attempts: int) -> None:
        await conn.execute(_QUARANTINE, row["id"], attempts, type(exc).__name__, refusal_reason(exc))
        self._moved_aside.append((row, type(exc).__name__, attempts))  # reported once committed

    def _report_quarantined(self) -> None:
        for row, error, attempts in self._moved_aside:
            self._refusals.pop(row["id"], None)
            self._metrics.outbox_quarantined.labels(row["topic"]).inc()
            log.error(
                "outbox row %d to %s quarantined after %d refusals (%s); the rows behind it go on"
                " (python -m usn_tools.outbox list)",
                row["id"],
                row["topic"],
                attempts,
                error,
            )
        if self._moved_aside:
            self._quarantine_checked = -math.inf  # the gauge follows at once

    async def _renew_producer(self) -> None:
        """Switch to a fresh producer (a new producer id, sequences from 0).

        An idempotent producer counts a refused batch into its sequence for that
        partition although the broker never wrote it, so every later batch there
        is refused as out of order (seen on Kafka 3.9.1 and 4.4.0). The shared producer is
        left to its owner; one made here is stopped when replaced.
        """
        fresh = self._make_producer()
        try:
            await fresh.start()
        except BaseException:
            with contextlib.suppress(Exception):  # e.g. the broker went away: the round is retried
                await fresh.stop()
            raise
        previous, self._own_producer = self._own_producer, fresh
        self._producer = fresh
        if previous is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(previous.stop(), timeout=_STOP_SECONDS)

    async def _refresh_quarantine_gauge(self) -> None:
        """Rows now in quarantine, per topic; every replica reports it (not only the lock holder)."""
        now = time.monotonic()
        if now - self._quarantine_checked < self._quarantine_every:
            return
        counts = {r["topic"]: r["n"] for r in await self._pool.fetch(_QUARANTINE_COUNTS)}
        for topic in self._quarantine_topics | set(counts):
            self._metrics.outbox_quarantine.labels(topic).set(counts.get(topic, 0))
        self._quarantine_topics |= set(counts)
        self._quarantine_checked = now


def _too_large(row: asyncpg.Record) -> bool:
    return len(row["key"]) + len(row["value"]) > MAX_REQUEST_BYTES


def _record(row: asyncpg.Record, trace_context: dict[str, str] | None = None) -> dict[str, Any]:
    return {"key": row["key"], "value": row["value"], "timestamp": None, "headers": _headers(row, trace_context)}


def is_refusal(exc: BaseException) -> bool:
    """The broker refused the record for what it is: it counts against the row."""
    return isinstance(exc, _REFUSALS)


def is_producer_out_of_step(exc: BaseException) -> bool:
    """The producer's state, not a row, is at fault: a fresh producer fixes it."""
    return isinstance(exc, _OUT_OF_STEP)


def refusal_reason(exc: BaseException) -> str:
    """The broker's own words for the error code, never the exception's text (it could quote data)."""
    code = getattr(exc, "errno", None)
    description = getattr(exc, "description", "") or getattr(exc, "message", "")
    return f"{type(exc).__name__}{f' (error code {code})' if code is not None else ''}: {description}".rstrip(": ")


def _bootstrap_of(producer: AIOKafkaProducer) -> str:
    return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p, _ in producer.client.hosts)


def _headers(row: asyncpg.Record, trace_context: dict[str, str] | None = None) -> list[tuple[str, bytes]]:
    """The row's stored headers; `trace_context` (the publish span's) replaces its stored one."""
    stored: dict[str, str] = {**json.loads(row["headers"]), **(trace_context or {})}
    headers = [(k, v.encode()) for k, v in stored.items()]
    headers.append(("content-type", b"application/cloudevents+json"))
    return headers
