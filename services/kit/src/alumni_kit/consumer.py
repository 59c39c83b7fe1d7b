"""Batch consumption with per-event guarantees.

For each batch the broker delivers: every record is parsed against its topic's
contracts; the ones that fail go to the DLQ; the rest are applied in ONE
database transaction together with their inbox entries; only then is the Kafka
offset committed. Duplicates (by event id) are skipped by the inbox, so a
redelivery after a crash changes nothing. Transient failures are retried and
never dead-lettered; if a batch fails for another reason, its events are
applied one by one so that only the event at fault is dead-lettered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeAlias

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from alumni_kit.db import Conn
from alumni_kit.dlq import Rejection, dead_letter
from alumni_kit.inbox import claim_new
from alumni_kit.logs import processing_failure, where_it_failed
from alumni_kit.metrics import KitMetrics
from alumni_kit.retry import retry_transient
from alumni_kit.shredding import ERASED, KeyRing, SealedFieldError, open_batch
from alumni_kit.tracing import trace_headers
from usn_schemas.envelope import CloudEvent, ContractError, parse_envelope

log = logging.getLogger(__name__)
Record: TypeAlias = ConsumerRecord


@dataclass(frozen=True)
class Incoming:
    """A valid event with where it came from (for logs, traces and the DLQ)."""

    record: Record
    event: CloudEvent
    trace_headers: dict[str, str]  # W3C context of the producer, handed on to what this event causes


# A handler applies new (never seen) events using the transaction's connection.
BatchHandler: TypeAlias = Callable[[Conn, list[Incoming]], Awaitable[None]]


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
    ) -> None:
        self.topic, self.group = topic, group
        self._contracts, self._handler = contracts, handler
        self._pool, self._producer, self._metrics = pool, producer, metrics
        self._keyring = keyring

    async def handle_batch(self, records: Sequence[Record]) -> None:
        """Process `records`; returns only when each is applied, skipped or dead-lettered."""
        started = time.perf_counter()
        valid: list[Incoming] = []
        opened = await retry_transient(
            lambda: open_batch([r.value for r in records], self._keyring), self._metrics, "subject_keys"
        )
        for record, value in zip(records, opened, strict=True):
            if isinstance(value, SealedFieldError):
                await self._reject(record, Rejection("SealedFieldError", "sealed-field", str(value)))
                continue
            if value is ERASED and record.value is not None:
                # Her key was deleted: the message is unreadable by design. Nothing to apply.
                self._metrics.consumed.labels(self.topic, "erased_subject").inc()
                continue
            try:
                event = parse_envelope(value, self._contracts)
            except ContractError as exc:
                await self._reject(record, Rejection("ContractError", exc.kind, exc.reason))
                continue
            valid.append(Incoming(record, event, trace_headers(record.headers)))
        if valid:
            await self._apply(valid)
        self._metrics.batch_size.labels(self.topic).observe(len(records))
        self._metrics.handler_seconds.labels(self.topic).observe(time.perf_counter() - started)

    async def _apply(self, events: list[Incoming]) -> None:
        try:
            fresh = await retry_transient(lambda: self._apply_in_transaction(events), self._metrics, self.topic)
        except Exception as exc:
            log.error(
                "batch of %d on %s failed (%s); applying its events one by one",
                len(events),
                self.topic,
                where_it_failed(exc),
            )
            await self._apply_one_by_one(events)
            return
        self._count(processed=fresh, duplicates=len(events) - fresh)
        log.debug("applied %d events (%d new) from %s", len(events), fresh, self.topic)

    async def _apply_one_by_one(self, events: list[Incoming]) -> None:
        for one in events:
            try:
                fresh = await retry_transient(partial(self._apply_in_transaction, [one]), self._metrics, self.topic)
            except Exception as exc:
                reason = processing_failure(exc)
                await self._reject(one.record, Rejection(type(exc).__name__, "processing-error", reason))
                continue
            self._count(processed=fresh, duplicates=1 - fresh)

    def _count(self, processed: int, duplicates: int) -> None:
        self._metrics.consumed.labels(self.topic, "processed").inc(processed)
        self._metrics.consumed.labels(self.topic, "duplicate").inc(duplicates)

    async def _apply_in_transaction(self, events: list[Incoming]) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            new_ids = await claim_new(conn, self.group, [e.event.id for e in events])
            fresh = _first_of_each(e for e in events if e.event.id in new_ids)
            if fresh:
                await self._handler(conn, fresh)
        return len(fresh)

    async def _reject(self, record: Record, rejection: Rejection) -> None:
        await retry_transient(
            lambda: dead_letter(self._producer, record, rejection, self.group), self._metrics, "dead_letter"
        )
        self._metrics.dead_lettered.labels(self.topic, rejection.kind).inc()
        self._metrics.consumed.labels(self.topic, "dead_lettered").inc()


def _first_of_each(events: Iterable[Incoming]) -> list[Incoming]:
    """Keep the first delivery of each event id (a batch may hold the same id twice)."""
    seen: set[str] = set()
    out: list[Incoming] = []
    for e in events:
        if e.event.id not in seen:
            seen.add(e.event.id)
            out.append(e)
    return out
