"""What a DSN does: a hard bounce suppresses the address and publishes `email-bounced`;
soft bounces count toward `MAILER_SOFT_BOUNCE_THRESHOLD`, then suppress too.

Runs the bounce listener (aiosmtpd) on the service's own event loop, so the
callback can use the database pool directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiosmtpd.smtp import SMTP

from alumni_kit.db import Conn
from alumni_kit.outbox import add_to_outbox
from alumni_kit.runtime import ServiceRuntime
from mailer.bounces import MAX_BOUNCE_BYTES, BounceHandler, DsnRecipient
from mailer.metrics import MailerMetrics
from mailer.recording import Bounce, suppress
from mailer.settings import MailerSettings

log = logging.getLogger(__name__)
# aiosmtpd logs every SMTP command at INFO, addresses included: on a public MX that is
# strangers' personal data in our logs. Its warnings and errors still come through.
logging.getLogger("mail.log").setLevel(logging.WARNING)


class BounceIngest:
    def __init__(self, runtime: ServiceRuntime, settings: MailerSettings, key: bytes, metrics: MailerMetrics) -> None:
        self._runtime, self._s, self._key, self._metrics = runtime, settings, key, metrics
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        if not self._s.bounce_listen_port:
            return
        handler = BounceHandler(self._key, self._s.bounce_local_part, self._s.bounce_domain, self.on_bounce)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(handler, data_size_limit=MAX_BOUNCE_BYTES, hostname=self._s.bounce_domain),
            host=self._s.bounce_listen_host,
            port=self._s.bounce_listen_port,
        )
        log.info("bounce listener on %s:%d", self._s.bounce_listen_host, self._s.bounce_listen_port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            # From Python 3.12 this waits for open client connections too: do not hang a shutdown on them.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), timeout=5)

    async def on_bounce(self, delivery: str, recipients: list[DsnRecipient], message_id: str | None) -> None:
        failed = [r for r in recipients if r.hard or r.soft]
        if not failed:
            return  # an auto-reply, or a "delivered" report: nothing to do
        hard = any(r.hard for r in failed)
        status = next((r.status for r in failed if r.hard == hard), "5.0.0")
        async with self._runtime.pool.acquire() as conn, conn.transaction():
            found = await _delivery(conn, delivery)
            if found is None:
                log.info("bounce for unknown delivery %s ignored", delivery)
                return
            table, row_id, address, member_id, campaign_id = found
            self._metrics.bounces.labels("hard" if hard else "soft").inc()
            self._metrics.email_bounces.labels("hard" if hard else "soft").inc()
            if hard or await _soft_bounces(conn, address) >= self._s.soft_bounce_threshold:
                reason = "hard-bounce" if hard else "soft-bounces"
                await conn.execute(
                    f"UPDATE {table} SET state = 'bounced', reason = $2, updated_at = now() WHERE id = $1",
                    row_id,
                    f"DSN {status}",
                )
                bounce = Bounce(address, reason, status, member_id, campaign_id)
                await add_to_outbox(conn, await suppress(conn, bounce, self._runtime.keyring))


async def _delivery(conn: Conn, reference: str) -> tuple[str, int, str, str | None, str | None] | None:
    """(table, id, address, member, campaign) a VERP reference names."""
    kind, number = reference[:1], reference[1:]
    if not number.isdigit():
        return None
    if kind == "c":
        row = await conn.fetchrow(
            "SELECT address, member_id, campaign_id FROM deliveries WHERE id = $1 AND address IS NOT NULL", int(number)
        )
        return ("deliveries", int(number), row["address"], row["member_id"], row["campaign_id"]) if row else None
    if kind == "t":
        row = await conn.fetchrow(
            "SELECT mail->>'to_address' AS address, member_id FROM transactional WHERE id = $1", int(number)
        )
        return (
            ("transactional", int(number), row["address"], row["member_id"], None) if row and row["address"] else None
        )
    return None


async def _soft_bounces(conn: Conn, address: str) -> int:
    count: int = await conn.fetchval(
        """INSERT INTO soft_bounces (address, count, last_at) VALUES (lower($1), 1, now())
           ON CONFLICT (address) DO UPDATE SET count = soft_bounces.count + 1, last_at = now()
           RETURNING count""",
        address,
    )
    return count
