"""How long the mailer keeps the words of a transactional mail it has finished with.

A stored request holds an address, a name and personal links. While it may
still be sent, or bounce (a DSN names the delivery, and the address comes from
here), it is needed; after `MAILER_TRANSACTIONAL_KEEP_DAYS` only its kind, state
and times stay. Erasure clears her requests at once (members.py); this covers
mail to people who never became members (sign-ups, applications) and old mail
of those who are members still.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from alumni_kit.db import Conn
from alumni_kit.errors import is_transient

log = logging.getLogger(__name__)

_PURGE = """
UPDATE transactional SET mail = jsonb_build_object('kind', mail->'kind', 'language', mail->'language')
 WHERE state NOT IN ('pending', 'sending') AND updated_at < now() - make_interval(days => $1)
   AND mail ? 'to_address'"""


async def purge_finished(conn: Conn, keep_days: int) -> int:
    """Clear the personal part of finished requests older than `keep_days`; how many."""
    status = await conn.execute(_PURGE, keep_days)
    return int(status.split()[-1])


async def purge_periodically(pool: asyncpg.Pool, keep_days: int, stop: asyncio.Event, every: float = 3600) -> None:
    while not stop.is_set():
        try:
            async with pool.acquire() as conn:
                cleared = await purge_finished(conn, keep_days)
            if cleared:
                log.info("cleared the personal part of %d finished transactional mails", cleared)
        except Exception as exc:  # a later round tries again
            log.warning("transactional mail purge failed (%s)", type(exc).__name__ if is_transient(exc) else exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
