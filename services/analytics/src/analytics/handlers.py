"""The live consumers: every topic's batch into the live generation (app.py subscribes them)."""

from __future__ import annotations

from alumni_kit.consumer import BatchHandler, Incoming
from alumni_kit.db import Conn
from analytics import store
from analytics.generations import LIVE_LOCK, checked
from analytics.rules import Weights


def live_projector(weights: Weights, pepper: bytes) -> BatchHandler:
    """A handler applying a batch to the live generation with its positions, in the kit's transaction."""

    async def on_batch(conn: Conn, events: list[Incoming]) -> None:
        # FOR SHARE on the live row: a rebuild's switch waits for this batch, and this batch
        # applies wholly to the generation that was live when it began.
        generation = await _live(conn)
        # The topics' consumers run concurrently and merge into shared rows (a delivery gets
        # its send and its open from two topics): one batch at a time per generation.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", generation)
        records = [i.record for i in events]
        fresh = [
            i.event for i, new in zip(events, await store.unapplied(conn, generation, records), strict=True) if new
        ]
        await store.apply_batch(conn, generation, fresh, weights, pepper)
        await store.record_positions(conn, generation, store.reached_by(records))

    return on_batch


async def _live(conn: Conn) -> str:
    # A batch that waited for a rebuild's switch finds no row in its statement's snapshot
    # (the old one is retired, the new one was 'building' then): the next statement sees it.
    for _ in range(5):
        name = await conn.fetchval(LIVE_LOCK)
        if name is not None:
            return checked(name)
    raise RuntimeError("no live generation")
