"""Rebuild and as_of: every projection from offset 0 into a fresh generation.

`rebuild` fills a new generation while the live one keeps serving, then switches
it live in the same transaction as its last catch-up (live batches wait on the
live row meanwhile, `handlers.py`). `as_of_generation` fills one up to the
positions of a past moment (offsets_for_times per partition) and leaves it frozen.
Both commit their rows with the positions reached in one transaction per batch,
so a build killed at any point resumes where it stopped (same result).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord
from tqdm import tqdm

from alumni_kit.auth import TokenSigner, parse_keys
from alumni_kit.db import KIT_MIGRATIONS, Conn, apply_migrations
from alumni_kit.gc_tuning import tune_gc_for_batches
from alumni_kit.keyring_http import HttpKeyRing
from alumni_kit.shredding import ERASED, KeyRing, SealedFieldError, open_batch
from analytics import generations, store
from analytics.generations import MIGRATIONS, Offsets
from analytics.rules import Weights
from analytics.settings import AnalyticsSettings
from analytics.topics import CONSUMED
from usn_schemas.envelope import CloudEvent, ContractError, is_binary_mode, parse_envelope, structured_from_binary
from usn_schemas.registry import TOPIC_CONTRACTS

log = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Tally:
    """What a build read: applied, and skipped by why (invalid ones are in the live DLQ already)."""

    applied: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


class Reader:
    """Records of every consumed topic, parsed the way the live consumers parse them."""

    def __init__(self, settings: AnalyticsSettings, keyring: KeyRing | None) -> None:
        self.settings = settings
        self.prefix = settings.topic_prefix
        self.keyring = keyring
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=None,  # no group: positions are the generation's, not the broker's
            enable_auto_commit=False,
            client_id="analytics-rebuild",
            # Bounded: every assigned partition (about 60) may hold a fetched buffer.
            fetch_max_bytes=16 * 1024 * 1024,
            max_partition_fetch_bytes=1024 * 1024,
            fetch_max_wait_ms=100,
        )
        self.partitions: list[TopicPartition] = []

    def contracts(self, topic: str) -> dict[str, type[CloudEvent]]:
        return TOPIC_CONTRACTS[topic.removeprefix(self.prefix)]

    async def start(self) -> None:
        self.partitions = await consumed_partitions(self.settings.kafka_bootstrap, self.prefix)
        await self.consumer.start()
        self.consumer.assign(self.partitions)

    async def stop(self) -> None:
        await self.consumer.stop()

    async def end_offsets(self) -> Offsets:
        ends = await self.consumer.end_offsets(self.partitions)
        return _nested(ends)

    async def offsets_at(self, moment: datetime) -> Offsets:
        """Per partition, the first offset of a record at or after `moment` (the end if none)."""
        # Kafka's timestamps are whole milliseconds (truncated): a record stamped in the
        # moment's millisecond but before it may belong, so look from the next one up.
        ms = -((_EPOCH - moment) // timedelta(milliseconds=1))
        found = await self.consumer.offsets_for_times(dict.fromkeys(self.partitions, ms))
        ends = await self.consumer.end_offsets(self.partitions)
        return _nested({tp: (ends[tp] if found[tp] is None else found[tp].offset) for tp in self.partitions})

    async def seek(self, start: Offsets) -> None:
        for tp in self.partitions:
            self.consumer.seek(tp, start.get(tp.topic, {}).get(tp.partition, 0))

    async def parse(self, records: Sequence[ConsumerRecord], tally: Tally) -> list[CloudEvent]:
        by_topic: dict[str, list[ConsumerRecord]] = {}
        for r in records:
            by_topic.setdefault(r.topic, []).append(r)
        out: list[CloudEvent] = []
        for topic, rs in by_topic.items():
            contracts = self.contracts(topic)
            values = [structured_from_binary(r.headers, r.value) if is_binary_mode(r.headers) else r.value for r in rs]
            for r, value in zip(rs, await open_batch(values, self.keyring, contracts), strict=True):
                if isinstance(value, SealedFieldError):
                    tally.skip("sealed-field")
                elif value is ERASED and r.value is not None:
                    tally.skip("erased_subject")  # her key is deleted: unreadable by design
                else:
                    try:
                        out.append(parse_envelope(value, contracts))
                    except ContractError as exc:
                        tally.skip(exc.kind)
        return out


async def consumed_partitions(bootstrap: str, prefix: str) -> list[TopicPartition]:
    """Every partition of every consumed topic that exists (a topic not created yet has no facts)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="analytics-rebuild")
    await admin.start()
    try:
        described = await admin.describe_topics([prefix + t for t in CONSUMED])
    finally:
        await admin.close()
    return [
        TopicPartition(d["topic"], p["partition"])
        for d in described
        if d["error_code"] == 0
        for p in sorted(d["partitions"], key=lambda p: p["partition"])
    ]


def _nested(flat: dict[TopicPartition, int]) -> Offsets:
    out: Offsets = {}
    for tp, offset in flat.items():
        out.setdefault(tp.topic, {})[tp.partition] = offset
    return out


def _remaining(at: Offsets, stop: Offsets) -> int:
    return sum(max(0, end - at.get(t, {}).get(p, 0)) for t, parts in stop.items() for p, end in parts.items())


async def _feed(
    conn: Conn,
    reader: Reader,
    name: str,
    stop: Offsets,
    weights: Weights,
    tally: Tally,
    bar: tqdm | None,
    in_transaction: bool = False,
) -> None:
    """Apply records to generation `name` until its positions reach `stop` everywhere.

    The next batch is fetched and parsed while the current one is written: PostgreSQL
    works on one while Python parses the other, so both cores are busy.
    """
    pepper = reader.settings.pepper()
    at = await generations.positions(conn, name)
    # Records deleted by retention are not to be waited for: start at the first one kept.
    for tp, first in (await reader.consumer.beginning_offsets(reader.partitions)).items():
        if first > at.get(tp.topic, {}).get(tp.partition, 0):
            at.setdefault(tp.topic, {})[tp.partition] = first
    await reader.seek(at)
    if _remaining(at, stop) <= 0:
        return
    upcoming = asyncio.create_task(_next_batch(reader, stop, tally))
    try:
        while _remaining(at, stop) > 0:
            records, events = await upcoming
            upcoming = asyncio.create_task(_next_batch(reader, stop, tally))
            if not records:
                continue
            reached = store.reached_by(records)
            if in_transaction:
                await store.apply_batch(conn, name, events, weights, pepper)
                await store.record_positions(conn, name, reached)
            else:
                async with conn.transaction():
                    await store.apply_batch(conn, name, events, weights, pepper)
                    await store.record_positions(conn, name, reached)
            tally.applied += len(events)
            for (t, p), o in reached.items():
                at.setdefault(t, {})[p] = max(at.get(t, {}).get(p, 0), o)
            if bar is not None:
                bar.update(len(records))
    finally:
        upcoming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await upcoming


async def _next_batch(reader: Reader, stop: Offsets, tally: Tally) -> tuple[list[ConsumerRecord], list[CloudEvent]]:
    """The next records before `stop`, and their events."""
    fetched = await reader.consumer.getmany(timeout_ms=500, max_records=reader.settings.rebuild_batch_records)
    records = [
        r for tp_records in fetched.values() for r in tp_records if r.offset < stop.get(r.topic, {}).get(r.partition, 0)
    ]
    return records, (await reader.parse(records, tally) if records else [])


@contextlib.asynccontextmanager
async def _opened(settings: AnalyticsSettings) -> AsyncIterator[tuple[asyncpg.Connection, Reader]]:
    keyring = HttpKeyRing(
        settings.membership_url,
        TokenSigner(parse_keys(settings.signing_keys.get_secret_value())),
        "analytics",
        settings.key_cache_seconds,
    )
    conn = await asyncpg.connect(settings.database_url)
    reader = Reader(settings, keyring)
    try:
        await apply_migrations(conn, {"kit": KIT_MIGRATIONS, "analytics": MIGRATIONS})
        await generations.ensure_live(conn)
        await reader.start()
        tune_gc_for_batches()  # as the live consumers do (alumni_kit.gc_tuning)
        yield conn, reader
    finally:
        await reader.stop()
        await conn.close()
        await keyring.close()


def _bar(total: int, initial: int, show: bool, what: str) -> tqdm | None:
    if not show:
        return None
    return tqdm(total=total, initial=initial, unit="ev", unit_scale=True, desc=what, smoothing=0.05, mininterval=0.5)


async def rebuild(settings: AnalyticsSettings, weights: Weights, *, progress: bool = True) -> str:
    """Rebuild every projection into a fresh generation and switch it live; returns its name.

    An unfinished rebuild (killed) is resumed from its committed positions.
    """
    async with _opened(settings) as (conn, reader):
        name = await generations.building_generation(conn, weights)
        if name is None:
            name = await generations.create_generation(conn, weights=weights)
            log.info("rebuilding into %s", name)
        else:
            log.info("resuming the rebuild of %s", name)
        tally = Tally()
        started = time.monotonic()
        ends = await reader.end_offsets()
        done = _remaining({}, ends) - _remaining(await generations.positions(conn, name), ends)
        bar = _bar(_remaining({}, ends), done, progress, f"rebuild {name}")
        # Catch up without holding anything, then the rest under the live row's lock.
        for _ in range(3):
            await _feed(conn, reader, name, ends, weights, tally, bar)
            ends = await reader.end_offsets()
            left = _remaining(await generations.positions(conn, name), ends)
            if left < settings.rebuild_batch_records:
                break
            if bar is not None:
                bar.total = _remaining({}, ends)
        async with conn.transaction():
            await conn.fetchval("SELECT name FROM generations WHERE state = 'live' FOR UPDATE")
            ends = await reader.end_offsets()
            await _feed(conn, reader, name, ends, weights, tally, bar, in_transaction=True)
            old = await generations.switch_live(conn, name)
        if bar is not None:
            bar.close()
        log.info(
            "rebuild %s live (was %s): %d events applied in %.1f s, skipped %s",
            name,
            old,
            tally.applied,
            time.monotonic() - started,
            tally.skipped,
        )
        # The one just retired stays for readers still on it; older ones go.
        for retired in await conn.fetch("SELECT name FROM generations WHERE state = 'retired' AND name <> $1", old):
            await generations.drop_generation(conn, retired["name"])
        return name


class NothingBeforeError(ValueError):
    """An as_of moment before the first event kept on the topics: there is nothing to show."""


class AsOfBusyError(RuntimeError):
    """Another as_of build is running: one at a time (try again when it is done)."""


# One as_of build at a time per database (every replica), so that as_of requests cost at
# most one rebuild's work at once however many moments are asked for.
_AS_OF_BUILD_LOCK = "SELECT pg_try_advisory_lock(hashtext('analytics/as_of-build'))"


async def as_of_generation(
    settings: AnalyticsSettings, weights: Weights, moment: datetime, *, progress: bool = False
) -> str:
    """A generation holding the projections as they stood at `moment` (built once, then reused).

    The read side calls this for `?as_of=`; the live generation is not touched. A moment
    whose positions (offsets_for_times) are those of a generation built already (under
    the same weights) reuses it: moments between the same two events cost nothing new.
    Bounded: one build at a time (`AsOfBusyError` otherwise), and at most `as_of_keep` of
    them kept.
    Raises `NothingBeforeError` for a moment before every event on the topics.
    """
    async with _opened(settings) as (conn, reader):
        name = await conn.fetchval(
            """SELECT name FROM generations WHERE as_of_moment = $1 AND weights = $2::jsonb
                ORDER BY (state = 'as_of') DESC, created_at LIMIT 1""",
            moment,
            generations.weights_json(weights),
        )
        if name is None:
            stop = await reader.offsets_at(moment)
            first = _nested(await reader.consumer.beginning_offsets(reader.partitions))
            if _remaining(first, stop) <= 0:
                raise NothingBeforeError("before the first event on the topics: nothing stood then")
            name = await _stopping_at(conn, stop, weights)
        else:
            stop = (await _stored_stop(conn, name))[1]
        if await _built(conn, name):
            return str(name)
        if not await conn.fetchval(_AS_OF_BUILD_LOCK):  # released when this connection closes
            raise AsOfBusyError("another as_of moment is being built; try again when it is done")
        # Under the lock, again: a build that held it a moment ago may have made this one.
        name = name or await _stopping_at(conn, stop, weights)
        if await _built(conn, name):
            return str(name)
        if name is None:
            name = await generations.create_generation(
                conn, "building", as_of_moment=moment, stop_at=stop, weights=weights
            )
        tally = Tally()
        done = _remaining({}, stop) - _remaining(await generations.positions(conn, name), stop)
        bar = _bar(_remaining({}, stop), done, progress, f"as_of {name}")
        await _feed(conn, reader, name, stop, weights, tally, bar)
        await conn.execute("UPDATE generations SET state = 'as_of' WHERE name = $1", name)
        if bar is not None:
            bar.close()
        await _drop_old_as_of(conn, settings.as_of_keep)
        return str(name)


async def built_as_of(conn: Conn, moment: datetime, weights: Weights) -> str | None:
    """The as_of generation built for exactly `moment` under `weights`, if any: found
    without opening Kafka."""
    name: str | None = await conn.fetchval(
        "SELECT name FROM generations WHERE as_of_moment = $1 AND state = 'as_of' AND weights = $2::jsonb LIMIT 1",
        moment,
        generations.weights_json(weights),
    )
    return None if name is None else generations.checked(name)


async def _built(conn: Conn, name: str | None) -> bool:
    return name is not None and await conn.fetchval("SELECT state FROM generations WHERE name = $1", name) == "as_of"


async def _stopping_at(conn: Conn, stop: Offsets, weights: Weights) -> str | None:
    """An as_of generation (built, or left building) up to exactly these positions, under these weights."""
    name: str | None = await conn.fetchval(
        """SELECT name FROM generations WHERE stop_at = $1::jsonb AND weights = $2::jsonb
            ORDER BY (state = 'as_of') DESC LIMIT 1""",
        json.dumps(stop),
        generations.weights_json(weights),
    )
    return name


async def _drop_old_as_of(conn: Conn, keep: int) -> None:
    """Keep the newest `keep` as_of generations: disk stays bounded however many moments are asked."""
    old = await conn.fetch(
        "SELECT name FROM generations WHERE state = 'as_of' ORDER BY created_at DESC OFFSET $1", keep
    )
    for row in old:
        await generations.drop_generation(conn, row["name"])


async def _stored_stop(conn: Conn, name: str) -> tuple[str, Offsets]:
    row = await conn.fetchrow("SELECT state, stop_at FROM generations WHERE name = $1", name)
    assert row is not None
    raw = json.loads(row["stop_at"])
    return row["state"], {t: {int(p): o for p, o in parts.items()} for t, parts in raw.items()}
