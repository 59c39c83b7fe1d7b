"""Batch consumption with per-event guarantees.

For each batch the broker delivers: events in the CloudEvents binary content
mode are turned into structured mode; sealed fields are opened (only on topics
whose producer seals them), every record is parsed against its topic's
contracts; the ones that fail go to the DLQ; the rest are applied in ONE
database transaction together with their inbox entries and the positions
reached (`positions.py`); only then is the Kafka offset committed. Duplicates
(by event id) are skipped by the inbox, so a redelivery after a crash changes
nothing.

Every failure is one of two kinds. Transient (database or broker down,
`errors.is_transient`): retried with back-off for as long as it lasts, never
dead-lettered. Anything else is attributed to one record: the batch is taken
apart, each record is tried alone at most `max_attempts` times, and the one
that still fails is dead-lettered as `processing-error` while the rest go on.
So no record can stop its partition (docs/guarantees.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TypeAlias, TypeVar

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from alumni_kit.db import Conn
from alumni_kit.dlq import Rejection, dead_letter
from alumni_kit.inbox import claim_new
from alumni_kit.logs import processing_failure, where_it_failed
from alumni_kit.metrics import OUTCOMES, KitMetrics
from alumni_kit.positions import record_positions
from alumni_kit.retry import retry_transient
from alumni_kit.shredding import ERASED, KeyRing, SealedFieldError, open_batch
from alumni_kit.tracing import consumer_attributes, context_of, start_span, trace_headers, tracing_enabled
from usn_schemas.envelope import CloudEvent, ContractError, is_binary_mode, parse_envelope, structured_from_binary

log = logging.getLogger(__name__)
Record: TypeAlias = ConsumerRecord
T = TypeVar("T")
Opened: TypeAlias = "bytes | SealedFieldError | None"


@dataclass(frozen=True)
class Incoming:
    """A valid event with where it came from (for logs, traces and the DLQ)."""

    record: Record
    event: CloudEvent
    trace_headers: dict[str, str]  # W3C context of the producer, handed on to what this event causes


# A handler applies new (never seen) events using the transaction's connection.
BatchHandler: TypeAlias = Callable[[Conn, list[Incoming]], Awaitable[None]]


class _GaveUp:
    """A record that failed `max_attempts` times and was dead-lettered."""


GAVE_UP = _GaveUp()
# First pause between two attempts at one record; doubled each time. Short: a
# failure that is not transient rarely heals by waiting, and the partition waits too.
FIRST_RETRY_DELAY = 0.1


class EventConsumer:
    def __init__(
        self,
        *,
        topic: str,
        group: str,
        contracts: dict[str, type[CloudEvent]],
        handler: BatchHandler,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        metrics: KitMetrics,
        keyring: KeyRing | None = None,
        max_attempts: int = 3,
        skip_unknown_types: bool = False,
    ) -> None:
        self.topic, self.group = topic, group
        self._contracts, self._handler = contracts, handler
        self._pool, self._producer, self._metrics = pool, producer, metrics
        self._keyring = keyring
        self._max_attempts = max_attempts
        self._skip_unknown_types = skip_unknown_types
        for outcome in OUTCOMES:  # every outcome's series from the start, at 0: rates need a first sample
            metrics.handled.labels(topic, outcome)

    async def handle_batch(self, records: Sequence[Record]) -> None:
        """Process `records`; returns only when each is applied, skipped or dead-lettered."""
        started = time.perf_counter()
        readable = [r for r in [await self._structured(record) for record in records] if r is not None]
        valid: list[Incoming] = []
        for (record, _), value in zip(readable, await self._open(readable), strict=True):
            event = await self._parse(record, value)
            if event is not None:
                valid.append(Incoming(record, event, trace_headers(record.headers)))
        if valid:
            with self._process_spans(valid) as traced:
                await self._apply(traced)
        self._metrics.batch_size.labels(self.topic).observe(len(records))
        self._metrics.handler_seconds.labels(self.topic).observe(time.perf_counter() - started)

    @contextlib.contextmanager
    def _process_spans(self, events: list[Incoming]) -> Iterator[list[Incoming]]:
        """One `process <topic>` span per event, each continuing its producer's trace.

        The events handed on carry their span's context, so what a handler writes
        (outbox rows, queued mails) continues this trace. A batch of one (a trickle)
        makes its span the current one, so that log lines carry its trace id.
        """
        if not tracing_enabled():
            yield events
            return
        spans: list[Span] = []
        traced: list[Incoming] = []
        for e in events:
            r = e.record
            attributes = consumer_attributes(self.topic, r.partition, r.offset, self.group, e.event.id)
            span = start_span(f"process {self.topic}", e.trace_headers, SpanKind.CONSUMER, attributes)
            spans.append(span)
            traced.append(replace(e, trace_headers=context_of(span)))
        try:
            if len(spans) == 1:
                with trace.use_span(spans[0], end_on_exit=False):
                    yield traced
            else:
                yield traced
        except BaseException as exc:
            for span in spans:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            for span in spans:
                span.end()

    async def _structured(self, record: Record) -> tuple[Record, bytes | None] | None:
        """The record with its value in structured mode (binary-mode events are converted);
        None when it was dead-lettered because it cannot be one."""
        if not is_binary_mode(record.headers):
            return record, record.value
        try:
            return record, structured_from_binary(record.headers, record.value)
        except ContractError as exc:
            await self._reject(record, Rejection("ContractError", exc.kind, exc.reason))
            return None

    async def _open(self, readable: Sequence[tuple[Record, bytes | None]]) -> list[Opened | _GaveUp]:
        """Each value with its sealed fields opened (one key lookup for the batch)."""
        try:
            return list(await self._open_values([value for _, value in readable]))
        except Exception as exc:
            log.error(
                "opening a batch of %d on %s failed (%s); one by one", len(readable), self.topic, where_it_failed(exc)
            )
        opened: list[Opened | _GaveUp] = []
        for record, value in readable:
            one = await self._with_attempts(record, partial(self._open_values, [value]))
            opened.append(one if isinstance(one, _GaveUp) else one[0])
        return opened

    async def _open_values(self, values: list[bytes | None]) -> list[Opened]:
        return await retry_transient(
            lambda: open_batch(values, self._keyring, self._contracts), self._metrics, "subject_keys"
        )

    async def _parse(self, record: Record, value: Opened | _GaveUp) -> CloudEvent | None:
        """The record's event, or None when it is skipped or dead-lettered."""
        if isinstance(value, _GaveUp):
            return None
        if isinstance(value, SealedFieldError):
            await self._reject(record, Rejection("SealedFieldError", "sealed-field", str(value)))
            return None
        if value is ERASED and record.value is not None:
            # Her key was deleted: the message is unreadable by design. Nothing to apply.
            self._metrics.consumed.labels(self.topic, "erased_subject").inc()
            self._metrics.handled.labels(self.topic, "ok").inc()  # skipped by design: nothing to apply
            return None
        try:
            return parse_envelope(value, self._contracts)
        except ContractError as exc:
            if exc.kind == "unknown-type" and self._skip_unknown_types:
                self._metrics.consumed.labels(self.topic, "unknown_type").inc()
                return None
            await self._reject(record, Rejection("ContractError", exc.kind, exc.reason))
        except Exception as exc:  # a validator that raised something else: still this record's fault
            await self._reject(record, Rejection(type(exc).__name__, "invalid", processing_failure(exc)))
        return None

    async def _apply(self, events: list[Incoming]) -> None:
        try:
            fresh = await self._apply_now(events)
        except Exception as exc:
            log.error(
                "batch of %d on %s failed (%s); applying its events one by one",
                len(events),
                self.topic,
                where_it_failed(exc),
            )
            for one in events:
                result = await self._with_attempts(one.record, partial(self._apply_now, [one]))
                if not isinstance(result, _GaveUp):
                    self._count(processed=result, duplicates=1 - result)
            return
        self._count(processed=fresh, duplicates=len(events) - fresh)
        log.debug("applied %d events (%d new) from %s", len(events), fresh, self.topic)

    async def _apply_now(self, events: list[Incoming]) -> int:
        return await retry_transient(partial(self._apply_in_transaction, events), self._metrics, self.topic)

    async def _with_attempts(self, record: Record, operation: Callable[[], Awaitable[T]]) -> T | _GaveUp:
        """`operation`'s result; after `max_attempts` failures the record is dead-lettered.

        Transient failures are retried inside `operation` and never count as attempts.
        """
        delay = FIRST_RETRY_DELAY
        for attempt in range(1, self._max_attempts + 1):
            try:
                return await operation()
            except Exception as exc:
                failure = exc
            self._metrics.failed_attempts.labels(self.topic).inc()
            log.warning(
                "%s[%d]@%d: attempt %d of %d failed (%s)",
                record.topic,
                record.partition,
                record.offset,
                attempt,
                self._max_attempts,
                where_it_failed(failure),
            )
            if attempt < self._max_attempts:
                self._metrics.handled.labels(self.topic, "retried").inc()
                await asyncio.sleep(delay)
                delay *= 2
        await self._reject(record, Rejection(type(failure).__name__, "processing-error", processing_failure(failure)))
        return GAVE_UP

    def _count(self, processed: int, duplicates: int) -> None:
        self._metrics.consumed.labels(self.topic, "processed").inc(processed)
        self._metrics.consumed.labels(self.topic, "duplicate").inc(duplicates)
        self._metrics.handled.labels(self.topic, "ok").inc(processed)
        self._metrics.handled.labels(self.topic, "duplicate").inc(duplicates)

    async def _apply_in_transaction(self, events: list[Incoming]) -> int:
        started = time.perf_counter()
        async with self._pool.acquire() as conn, conn.transaction():
            new_ids = await claim_new(conn, self.group, [e.event.id for e in events])
            fresh = _first_of_each(e for e in events if e.event.id in new_ids)
            if fresh:
                await self._handler(conn, fresh)
            await record_positions(conn, self.group, [e.record for e in events])
        self._metrics.handler_duration.labels(self.topic).observe(time.perf_counter() - started)
        return len(fresh)

    async def _reject(self, record: Record, rejection: Rejection) -> None:
        await retry_transient(
            lambda: dead_letter(self._producer, record, rejection, self.group), self._metrics, "dead_letter"
        )
        self._metrics.dead_lettered.labels(self.topic, rejection.kind).inc()
        self._metrics.consumed.labels(self.topic, "dead_lettered").inc()
        self._metrics.handled.labels(self.topic, "dead_lettered").inc()


def _first_of_each(events: Iterable[Incoming]) -> list[Incoming]:
    """Keep the first delivery of each event id (a batch may hold the same id twice)."""
    seen: set[str] = set()
    out: list[Incoming] = []
    for e in events:
        if e.event.id not in seen:
            seen.add(e.event.id)
            out.append(e)
    return out
