"""The one way facts enter the consent ledger, and the queries that read it.

`record()` serves every source (preference centre, confirmation, one-click
unsubscribe, staff, import): in the caller's transaction it locks the members'
rows (so each member's sequence is gap-free and ordered, however many requests
race), drops requests that would not change the current state (saving twice,
a replayed confirmation, a second unsubscribe), appends the rest, updates the
current state and puts the facts in the outbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alumni_kit.consent_view import apply_consent_facts
from alumni_kit.db import Conn
from alumni_kit.outbox import OutboxMessage, add_to_outbox
from consent import SOURCE
from consent.notices import Notice, NoticeRef
from usn_schemas.consent import Channel, ConsentFact, ConsentGivenV1, ConsentState, ConsentWithdrawnV1, Source
from usn_schemas.ids import new_id

Key = tuple[str, str, str]  # member, channel, purpose


_LEDGER_COLUMNS = [
    "fact_id",
    "member_id",
    "sequence",
    "channel",
    "purpose",
    "state",
    "recorded_at",
    "source",
    "method",
    "notice_version",
    "notice_sha256",
    "reason",
    "actor",
]


@dataclass(frozen=True)
class FactRequest:
    member_id: str
    channel: Channel
    purpose: str
    state: ConsentState
    source: Source
    method: str
    notice: NoticeRef | None = None
    reason: str | None = None
    actor: str | None = None
    # Imports fill gaps only: a list from elsewhere never overrides a fact the ledger
    # already holds (her own withdrawal above all); such requests are counted as kept.
    fills_gaps_only: bool = False

    @property
    def key(self) -> Key:
        return (self.member_id, self.channel, self.purpose)


@dataclass(frozen=True)
class Outcome:
    recorded: list[ConsentFact]
    unchanged: int
    unknown_members: list[str]
    kept_existing: int = 0  # gap-filling requests that met a different fact already there

    def __add__(self, other: Outcome) -> Outcome:
        return Outcome(
            self.recorded + other.recorded,
            self.unchanged + other.unchanged,
            sorted({*self.unknown_members, *other.unknown_members}),
            self.kept_existing + other.kept_existing,
        )


async def record(conn: Conn, requests: Sequence[FactRequest], trace_headers: dict[str, str] | None = None) -> Outcome:
    """Append the facts that change something; call inside a transaction."""
    member_ids = sorted({r.member_id for r in requests})
    # Ordered locking: two transactions over overlapping members cannot deadlock.
    locked = await conn.fetch(
        "SELECT member_id, last_sequence FROM subjects WHERE member_id = any($1::text[]) ORDER BY member_id FOR UPDATE",
        member_ids,
    )
    sequences = {r["member_id"]: r["last_sequence"] for r in locked}
    states = await _current_states(conn, list(sequences))
    # The database's clock, read under the lock: one clock for every replica, so a
    # later sequence never carries an earlier time (the proof API relies on it).
    now: datetime = await conn.fetchval("SELECT clock_timestamp()")
    facts: list[tuple[ConsentFact, FactRequest]] = []
    unknown: set[str] = set()
    unchanged = kept = 0
    for req in requests:
        if req.member_id not in sequences:
            unknown.add(req.member_id)
        elif states.get(req.key) == req.state:
            unchanged += 1
        elif req.fills_gaps_only and req.key in states:
            kept += 1
        else:
            sequences[req.member_id] += 1
            states[req.key] = req.state
            facts.append((_fact(req, sequences[req.member_id], now), req))
    if facts:
        await _append(conn, facts, sequences, trace_headers or {})
    return Outcome([f for f, _ in facts], unchanged, sorted(unknown), kept)


def _fact(req: FactRequest, sequence: int, now: datetime) -> ConsentFact:
    return ConsentFact(
        fact_id=new_id(),
        member_id=req.member_id,
        sequence=sequence,
        channel=req.channel,
        purpose=req.purpose,
        state=req.state,
        recorded_at=now,
        source=req.source,
        method=req.method,
        notice_version=req.notice.version if req.notice else None,
        notice_sha256=req.notice.sha256 if req.notice else None,
    )


async def _current_states(conn: Conn, member_ids: list[str]) -> dict[Key, str]:
    rows = await conn.fetch(
        "SELECT member_id, channel, purpose, state FROM current_consent WHERE member_id = any($1::text[])", member_ids
    )
    return {(r["member_id"], r["channel"], r["purpose"]): r["state"] for r in rows}


async def _append(
    conn: Conn,
    recorded: list[tuple[ConsentFact, FactRequest]],
    sequences: dict[str, int],
    trace_headers: dict[str, str],
) -> None:
    await conn.copy_records_to_table(
        "ledger", records=[_ledger_row(f, req) for f, req in recorded], columns=_LEDGER_COLUMNS
    )
    facts = [f for f, _ in recorded]
    await apply_consent_facts(conn, facts, table="current_consent")
    touched = {f.member_id for f in facts}
    await conn.execute(
        "UPDATE subjects s SET last_sequence = u.seq FROM unnest($1::text[], $2::bigint[]) AS u(id, seq)"
        " WHERE s.member_id = u.id",
        list(touched),
        [sequences[m] for m in touched],
    )
    await add_to_outbox(conn, [_outgoing(f, trace_headers) for f in facts])


def _ledger_row(f: ConsentFact, req: FactRequest) -> tuple[Any, ...]:
    return (
        f.fact_id, f.member_id, f.sequence, f.channel, f.purpose, f.state, f.recorded_at,
        f.source, f.method, f.notice_version, f.notice_sha256, req.reason, req.actor,
    )  # fmt: skip


def _outgoing(fact: ConsentFact, trace_headers: dict[str, str]) -> OutboxMessage:
    contract = ConsentGivenV1 if fact.state == "given" else ConsentWithdrawnV1
    event = contract.create(
        id=fact.fact_id,
        time=fact.recorded_at,
        subject=fact.member_id,
        sequence=fact.sequence,
        data=fact,
        source=SOURCE,
    )
    return OutboxMessage(topic=f"consent-{fact.state}", key=fact.member_id, event=event, headers=trace_headers)


# ---- reads -------------------------------------------------------------------------------------------------

_FACT_COLUMNS = (
    "fact_id, member_id, sequence, channel, purpose, state, recorded_at, source, method,"
    " notice_version, notice_sha256, reason, actor, erased"
)


async def current(conn: Conn, member_id: str) -> dict[tuple[str, str], str]:
    """{(channel, purpose): state} for one member."""
    rows = await conn.fetch("SELECT channel, purpose, state FROM current_consent WHERE member_id = $1", member_id)
    return {(r["channel"], r["purpose"]): r["state"] for r in rows}


async def history(conn: Conn, member_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(f"SELECT {_FACT_COLUMNS} FROM ledger WHERE member_id = $1 ORDER BY sequence", member_id)
    return [dict(r) for r in rows]


async def fact_at(conn: Conn, member_id: str, channel: str, purpose: str, at: datetime) -> dict[str, Any] | None:
    """The fact in force for the key at time `at`: the newest one recorded by then."""
    row = await conn.fetchrow(
        f"""SELECT {_FACT_COLUMNS} FROM ledger
             WHERE member_id = $1 AND channel = $2 AND purpose = $3 AND recorded_at <= $4
             ORDER BY sequence DESC LIMIT 1""",
        member_id,
        channel,
        purpose,
        at,
    )
    return dict(row) if row else None


async def fact_by_id(conn: Conn, fact_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {_FACT_COLUMNS} FROM ledger WHERE fact_id = $1", fact_id)
    return dict(row) if row else None


async def notice(conn: Conn, sha256: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT sha256, version, purpose, language, title, body FROM notices WHERE sha256 = $1", sha256
    )
    return dict(row) if row else None


async def store_notices(conn: Conn, notices: list[Notice]) -> None:
    """Keep every text that can be shown (idempotent; run at start)."""
    await conn.executemany(
        "INSERT INTO notices (sha256, version, purpose, language, title, body) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (sha256) DO NOTHING",
        [(n.sha256, n.version, n.purpose, n.language, n.title, n.text) for n in notices],
    )
