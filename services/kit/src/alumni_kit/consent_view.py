"""The local copy of consent state any service keeps from `consent-given` / `consent-withdrawn`.

Opt in with `ServiceRuntime(..., shared=CONSENT_VIEW_MIGRATIONS)` and subscribe
`consent_view_handler()` to both topics. Per member × channel × purpose the
fact with the highest sequence wins, whatever order the two topics deliver in;
a repeated or older fact changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from alumni_kit.consumer import BatchHandler, Incoming
from alumni_kit.db import Conn
from usn_schemas.consent import ConsentFact, ConsentGivenV1, ConsentWithdrawnV1

CONSENT_VIEW_MIGRATIONS = {"consent-view": Path(__file__).parent / "consent_view_migrations"}

# {table}: consent_view here, current_consent in consent's own database (same columns).
_UPSERT = """
INSERT INTO {table} AS v (member_id, channel, purpose, state, sequence, fact_id, recorded_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::timestamptz[])
ON CONFLICT (member_id, channel, purpose) DO UPDATE
   SET state = excluded.state, sequence = excluded.sequence,
       fact_id = excluded.fact_id, recorded_at = excluded.recorded_at
 WHERE v.sequence < excluded.sequence
"""
CONSENT_TABLES = ("consent_view", "current_consent")


@dataclass(frozen=True)
class ConsentState:
    state: str
    sequence: int
    fact_id: str
    recorded_at: datetime

    @property
    def given(self) -> bool:
        return self.state == "given"


def _newest_per_key(facts: list[ConsentFact]) -> list[ConsentFact]:
    # One row per key in a statement: ON CONFLICT may not touch a row twice.
    newest: dict[tuple[str, str, str], ConsentFact] = {}
    for f in facts:
        key = (f.member_id, f.channel, f.purpose)
        if key not in newest or newest[key].sequence < f.sequence:
            newest[key] = f
    return list(newest.values())


async def apply_consent_facts(conn: Conn, facts: list[ConsentFact], table: str = "consent_view") -> None:
    """Lay `facts` over the state in `table`: per member × channel × purpose the highest
    sequence wins. The one upsert of consent state, for this view and for consent's ledger."""
    if table not in CONSENT_TABLES:  # a table name cannot be a query parameter
        raise ValueError(f"not a consent state table: {table}")
    rows = _newest_per_key(facts)
    if rows:
        await conn.execute(
            _UPSERT.format(table=table),
            [f.member_id for f in rows],
            [f.channel for f in rows],
            [f.purpose for f in rows],
            [f.state for f in rows],
            [f.sequence for f in rows],
            [f.fact_id for f in rows],
            [f.recorded_at for f in rows],
        )


def consent_view_handler() -> BatchHandler:
    """A batch handler for both consent topics."""

    async def on_consent(conn: Conn, events: list[Incoming]) -> None:
        facts = []
        for incoming in events:
            assert isinstance(incoming.event, ConsentGivenV1 | ConsentWithdrawnV1)
            facts.append(incoming.event.data)
        await apply_consent_facts(conn, facts)

    return on_consent


async def consent_of(conn: Conn, member_id: str, channel: str, purpose: str) -> ConsentState | None:
    """What the view holds for one member × channel × purpose (None: never given)."""
    row = await conn.fetchrow(
        "SELECT state, sequence, fact_id, recorded_at FROM consent_view"
        " WHERE member_id = $1 AND channel = $2 AND purpose = $3",
        member_id,
        channel,
        purpose,
    )
    return ConsentState(**dict(row)) if row else None


async def forget_member(conn: Conn, member_id: str) -> None:
    """Erasure: the view's rows about `member_id` go."""
    await conn.execute("DELETE FROM consent_view WHERE member_id = $1", member_id)
