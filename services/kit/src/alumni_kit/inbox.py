"""Inbox: processed event ids, recorded in the same transaction as their effect."""

from __future__ import annotations

from alumni_kit.db import Conn


async def claim_new(conn: Conn, consumer: str, event_ids: list[str]) -> set[str]:
    """Record `event_ids` as processed by `consumer`; return those not seen before.

    Call inside the transaction that applies the events: if it rolls back, the
    claim rolls back with it, and a redelivery is processed again.
    """
    rows = await conn.fetch(
        """INSERT INTO inbox (consumer, event_id)
           SELECT $1, id FROM unnest($2::text[]) AS t(id)
           ON CONFLICT DO NOTHING
           RETURNING event_id""",
        consumer,
        list(dict.fromkeys(event_ids)),
    )
    return {r["event_id"] for r in rows}
