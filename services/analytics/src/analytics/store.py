"""SQL of the projections: load the rows a batch touches, apply the pure rules, write them back.

One batch = one transaction of the caller's: rows, erasures and the Kafka positions
reached are committed together, so a batch is applied wholly or not at all, and a
record at an offset below the generation's position is never applied twice.
Writes go through COPY into a per-session staging table and one INSERT … ON
CONFLICT per table: a rebuild batch of thousands of rows costs a few round trips.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka.structs import ConsumerRecord

from alumni_kit.db import Conn
from analytics.generations import checked
from analytics.rules import (
    PER_MEMBER,
    TABLES,
    Key,
    Projection,
    Row,
    Table,
    Weights,
    anonymous_key,
    split,
)
from usn_schemas.envelope import CloudEvent

# Key columns that are not text (for typing the unnest of keys).
_KEY_TYPES = {"sequence": "bigint"}


async def apply_batch(
    conn: Conn, generation: str, events: Sequence[CloudEvent], weights: Weights, pepper: bytes
) -> None:
    """Apply `events` to `generation` (inside the caller's transaction); `pepper` keys erased members."""
    if not events:
        return
    schema = checked(generation)
    projection = Projection(weights, pepper=pepper)
    erasures, rows = split(events)
    erasing = {member_id for member_id, _ in erasures}
    await _load_erased(conn, schema, rows, erasing, projection)
    await _load_touched(conn, schema, rows, projection, erasing)
    projection.apply_rows(erasures, rows)
    await _write(conn, schema, projection)


async def _load_erased(
    conn: Conn, schema: str, rows: list[tuple[str, Row]], erasing: set[str], projection: Projection
) -> None:
    ids = {row["member_key"] for _, row in rows if row.get("member_key")} | erasing
    if not ids:
        return
    records = await conn.fetch(
        f"SELECT member_key, erased_at FROM {schema}.erased WHERE member_key = ANY($1::text[])",
        [anonymous_key(projection.pepper, i) for i in ids],
    )
    projection.erased.update({r["member_key"]: r["erased_at"] for r in records})


async def _load_touched(
    conn: Conn, schema: str, rows: list[tuple[str, Row]], projection: Projection, erasing: set[str]
) -> None:
    """Load every stored row the batch may merge into (and every row of a member it erases)."""
    gone = {anonymous_key(projection.pepper, i) for i in erasing} | set(projection.erased)
    wanted: dict[str, set[Key]] = {name: set() for name in TABLES}
    for table, row in rows:
        spec = TABLES[table]
        if spec.per_member and row.get("member_key") is not None and gone:
            anonymous = anonymous_key(projection.pepper, row["member_key"])
            if anonymous in gone:
                row = {**row, "member_key": anonymous}
        wanted[table].add(spec.key_of(row))
    for table, keys in wanted.items():
        if keys and table != "engagement_facts":  # derived rows are overwritten, never merged
            await _load_keys(conn, schema, TABLES[table], keys, projection)
    if erasing:
        keys_of_them = [*erasing, *(anonymous_key(projection.pepper, i) for i in erasing)]
        for spec in PER_MEMBER:
            records = await conn.fetch(
                f"SELECT * FROM {schema}.{spec.name} WHERE member_key = ANY($1::text[])", keys_of_them
            )
            _take(projection, spec, records)


async def _load_keys(conn: Conn, schema: str, spec: Table, keys: set[Key], projection: Projection) -> None:
    columns = list(zip(*keys, strict=True))
    unnest = ", ".join(f"${i + 1}::{_KEY_TYPES.get(k, 'text')}[]" for i, k in enumerate(spec.key))
    names = ", ".join(f"k{i}" for i in range(len(spec.key)))
    on = " AND ".join(f"t.{k} = w.k{i}" for i, k in enumerate(spec.key))
    rows = await conn.fetch(
        f"SELECT t.* FROM {schema}.{spec.name} t JOIN unnest({unnest}) AS w({names}) ON {on}",
        *[list(c) for c in columns],
    )
    _take(projection, spec, rows)


def _take(projection: Projection, spec: Table, records: Iterable[Any]) -> None:
    for record in records:
        row: Row = {c: record[c] for c in spec.columns}
        for c in spec.json_columns:
            row[c] = json.loads(row[c])
        projection.rows[spec.name][spec.key_of(row)] = row


async def _write(conn: Conn, schema: str, projection: Projection) -> None:
    if projection.erased_now:
        await conn.execute(
            f"""INSERT INTO {schema}.erased (member_key, erased_at)
                SELECT * FROM unnest($1::text[], $2::timestamptz[])
                ON CONFLICT (member_key) DO UPDATE SET erased_at = least(erased.erased_at, EXCLUDED.erased_at)""",
            list(projection.erased_now),
            list(projection.erased_now.values()),
        )
    for name, spec in TABLES.items():
        deleted = projection.deleted[name]
        if deleted:
            await _delete(conn, schema, spec, deleted)
        touched = projection.touched[name]
        if touched:
            await _upsert(conn, schema, spec, [projection.rows[name][k] for k in touched])


async def _delete(conn: Conn, schema: str, spec: Table, keys: set[Key]) -> None:
    columns = list(zip(*keys, strict=True))
    unnest = ", ".join(f"${i + 1}::{_KEY_TYPES.get(k, 'text')}[]" for i, k in enumerate(spec.key))
    names = ", ".join(f"k{i}" for i in range(len(spec.key)))
    on = " AND ".join(f"t.{k} = w.k{i}" for i, k in enumerate(spec.key))
    await conn.execute(
        f"DELETE FROM {schema}.{spec.name} t USING unnest({unnest}) AS w({names}) WHERE {on}",
        *[list(c) for c in columns],
    )


async def _upsert(conn: Conn, schema: str, spec: Table, rows: list[Row]) -> None:
    stage = f"stage_{spec.name}"
    # A session's staging table, emptied at each commit; LIKE any generation (all have the same shape).
    await conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {schema}.{spec.name}) ON COMMIT DELETE ROWS")
    records = [tuple(json.dumps(r[c]) if c in spec.json_columns else r[c] for c in spec.columns) for r in rows]
    await conn.copy_records_to_table(stage, records=records, columns=list(spec.columns))
    cols = ", ".join(spec.columns)
    updates = (
        ", ".join(f"{c} = EXCLUDED.{c}" for c in spec.columns if c not in spec.key)
        or "member_key = EXCLUDED.member_key"
    )
    await conn.execute(
        f"""INSERT INTO {schema}.{spec.name} ({cols}) SELECT {cols} FROM {stage}
            ON CONFLICT ({", ".join(spec.key)}) DO UPDATE SET {updates}"""
    )
    await conn.execute(f"TRUNCATE {stage}")


async def unapplied(conn: Conn, generation: str, records: Sequence[ConsumerRecord]) -> list[bool]:
    """For each record, whether `generation` has not applied it yet (its offset is at or past the position)."""
    schema = checked(generation)
    topics = sorted({r.topic for r in records})
    reached = {
        (r["topic"], r["partition"]): r["next_offset"]
        for r in await conn.fetch(
            f"SELECT topic, partition, next_offset FROM {schema}.positions WHERE topic = ANY($1::text[])", topics
        )
    }
    return [r.offset >= reached.get((r.topic, r.partition), 0) for r in records]


async def record_positions(conn: Conn, generation: str, reached: dict[tuple[str, int], int]) -> None:
    """Advance `generation`'s positions to `reached` ((topic, partition) -> next offset); never backwards."""
    if not reached:
        return
    await conn.execute(
        f"""INSERT INTO {checked(generation)}.positions (topic, partition, next_offset)
            SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[])
            ON CONFLICT (topic, partition) DO UPDATE
              SET next_offset = greatest(positions.next_offset, EXCLUDED.next_offset)""",
        [t for t, _ in reached],
        [p for _, p in reached],
        list(reached.values()),
    )


def reached_by(records: Iterable[ConsumerRecord]) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for r in records:
        where = (r.topic, r.partition)
        out[where] = max(out.get(where, 0), r.offset + 1)
    return out
