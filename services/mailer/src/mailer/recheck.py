"""The send-time consent check, one query for the messages all connections are about to send.

Each SMTP connection asks right before its transaction. Whoever asks while a query runs
waits for the next one, which then answers all of them: as many queries as connections
at most, instead of one per message, and each answer is still at most one query old when
its SMTP transaction starts. Every query is its own snapshot: a withdrawal committed
before it wins.
"""

from __future__ import annotations

import asyncio

from alumni_kit.db import Conn
from mailer.delivery import Delivery

# Is the consent the claim relied on still given, and the address neither suppressed nor erased?
_STILL_ALLOWED = """
SELECT u.id, v.fact_id
  FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS u(id, member_id, purpose, address)
  JOIN consent_view v ON v.member_id = u.member_id AND v.channel = 'email' AND v.purpose = u.purpose
                     AND v.state = 'given'
 WHERE NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.address = lower(u.address))
   AND NOT EXISTS (SELECT 1 FROM erased_members e WHERE e.member_id = u.member_id)
"""


class ConsentRecheck:
    """Coalesces concurrent re-checks of campaign deliveries into one query on `conn` (held by the sender)."""

    def __init__(self, conn: Conn) -> None:
        self._conn = conn
        self._waiting: list[tuple[Delivery, asyncio.Future[str | None]]] = []
        self._running: asyncio.Task[None] | None = None
        self.failure: Exception | None = None  # the connection broke: the sender starts over

    async def fact(self, d: Delivery) -> str | None:
        """The consent fact that allows sending `d` now, or None (withdrawn, suppressed or erased)."""
        answer: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((d, answer))
        if self._running is None:
            self._running = asyncio.create_task(self._answer_all(), name="mailer-consent-recheck")
        return await answer

    async def _answer_all(self) -> None:
        try:
            while self._waiting:
                wave, self._waiting = self._waiting, []
                await self._answer(wave)
        finally:
            self._running = None

    async def _answer(self, wave: list[tuple[Delivery, asyncio.Future[str | None]]]) -> None:
        try:
            rows = await self._conn.fetch(
                _STILL_ALLOWED,
                [d.id for d, _ in wave],
                [d.member_id for d, _ in wave],
                [d.purpose for d, _ in wave],
                [d.address for d, _ in wave],
            )
        except Exception as exc:
            self.failure = exc
            for _, answer in wave:
                if not answer.done():
                    answer.set_exception(exc)
            return
        facts = {r["id"]: r["fact_id"] for r in rows}
        for d, answer in wave:
            if not answer.done():  # a waiter cancelled (the sender is stopping) needs no answer
                answer.set_result(facts.get(d.id))
