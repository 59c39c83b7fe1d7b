"""Volunteer offers: what stands now, the history, and one event per effective change.

The caller holds the member's row lock (profile.lock_member), so the
per-member sequence is taken without gaps or races, and commits the outbox
rows in the same transaction as the offers.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from alumni_kit.db import Conn
from alumni_kit.outbox import OutboxMessage
from membership import SOURCE
from usn_schemas.ids import new_id
from usn_schemas.volunteer import OFFER_TYPES, OfferType, VolunteerFact, VolunteerOfferedV1, VolunteerWithdrawnV1

OfferState = Literal["offered", "withdrawn"]

_SCOPE = """
SELECT coalesce(array_agg(DISTINCT faculty ORDER BY faculty), '{}') AS faculties,
       coalesce(array_agg(DISTINCT programme_code ORDER BY programme_code), '{}') AS codes
  FROM programmes WHERE member_id = $1"""
_RECORD_FACTS = """
INSERT INTO volunteer_facts (member_id, sequence, offer_type, state, event_id, recorded_at)
SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])"""


def plan_changes(current: Iterable[str], wanted: Iterable[str]) -> list[tuple[OfferType, OfferState]]:
    """The effective changes, in the fixed order of OFFER_TYPES (so sequences are deterministic)."""
    now, then = set(current), set(wanted)
    return [(o, "offered" if o in then else "withdrawn") for o in OFFER_TYPES if (o in now) != (o in then)]


async def current_offers(conn: Conn, member_id: str) -> set[str]:
    rows = await conn.fetch("SELECT offer_type FROM volunteer_offers WHERE member_id = $1", member_id)
    return {r["offer_type"] for r in rows}


async def set_offers(
    conn: Conn, member_id: str, wanted: Iterable[OfferType], trace_headers: dict[str, str] | None = None
) -> list[OutboxMessage]:
    """Make `wanted` her standing offers; the events to publish (none when nothing changed)."""
    changes = plan_changes(await current_offers(conn, member_id), wanted)
    if not changes:
        return []
    last = await conn.fetchval("SELECT coalesce(max(sequence), 0) FROM volunteer_facts WHERE member_id = $1", member_id)
    scope = await conn.fetchrow(_SCOPE, member_id)
    assert scope is not None  # an aggregate always answers one row
    now = datetime.now(UTC)
    messages = [
        _message(member_id, last + i, offer, state, list(scope["faculties"]), list(scope["codes"]), now, trace_headers)
        for i, (offer, state) in enumerate(changes, start=1)
    ]
    await _store(conn, member_id, changes, messages, now)
    return messages


async def _store(
    conn: Conn,
    member_id: str,
    changes: list[tuple[OfferType, OfferState]],
    messages: list[OutboxMessage],
    now: datetime,
) -> None:
    offered = [o for o, s in changes if s == "offered"]
    withdrawn = [o for o, s in changes if s == "withdrawn"]
    await conn.execute(
        "INSERT INTO volunteer_offers (member_id, offer_type, offered_at) SELECT $1, unnest($2::text[]), $3",
        member_id,
        offered,
        now,
    )
    await conn.execute(
        "DELETE FROM volunteer_offers WHERE member_id = $1 AND offer_type = ANY($2::text[])", member_id, withdrawn
    )
    await conn.execute(
        _RECORD_FACTS,
        member_id,
        [m.event.sequence for m in messages],
        [o for o, _ in changes],
        [s for _, s in changes],
        [m.event.id for m in messages],
        [now] * len(changes),
    )


def _message(
    member_id: str,
    sequence: int,
    offer: OfferType,
    state: OfferState,
    faculties: list[Any],
    codes: list[str],
    now: datetime,
    trace_headers: dict[str, str] | None,
) -> OutboxMessage:
    fact = VolunteerFact(
        member_id=member_id,
        sequence=sequence,
        offer_type=offer,
        faculties=faculties,
        programme_codes=codes,
        recorded_at=now,
    )
    contract = VolunteerOfferedV1 if state == "offered" else VolunteerWithdrawnV1
    event = contract.create(subject=member_id, data=fact, source=SOURCE, sequence=sequence, id=new_id(), time=now)
    return OutboxMessage(topic=f"volunteer-{state}", key=member_id, event=event, headers=trace_headers or {})


async def export_offers(conn: Conn, member_id: str) -> dict[str, Any]:
    """Her standing offers and every change she made, for the access export (art. 15)."""
    standing = await conn.fetch(
        "SELECT offer_type, offered_at FROM volunteer_offers WHERE member_id = $1 ORDER BY offered_at, offer_type",
        member_id,
    )
    history = await conn.fetch(
        "SELECT sequence, offer_type, state, recorded_at FROM volunteer_facts WHERE member_id = $1 ORDER BY sequence",
        member_id,
    )
    return {"standing": [dict(r) for r in standing], "history": [dict(r) for r in history]}
