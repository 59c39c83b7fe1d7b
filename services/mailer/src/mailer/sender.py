"""The send loop: due campaigns → deliveries → SMTP, at most once per (campaign, member).

One sender per database sends (an advisory lock; other replicas wait as standbys),
so a delivery is only ever in one process's hands. Each round:

1. claim a small batch of due deliveries and decide from the mailer's local copies
   (member, consent view, suppression): skipped ones get their reason; the rest are
   marked `sending`, with the consent fact and address, and committed *before* any
   SMTP traffic;
2. for each, re-check consent and suppression right before its SMTP transaction
   (a withdrawal that arrived meanwhile wins), then send;
3. record the outcomes in one transaction: `sent` with `newsletter-sent`, a 4xx
   back to `pending` with back-off, a 5xx `bounced` and suppressed, a relay that is
   down back to `pending` (nothing was accepted) and the campaign paused.

A process killed between 1 and 3 leaves rows in `sending`; the next sender marks
them `uncertain` instead of sending them again: at most two claimed batches (one
sending, one being recorded; 2 × `MAILER_CLAIM_BATCH`), listed in the staff API
(docs/mailer.md, "Uncertain").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from typing import Any

from alumni_kit.auth import TokenSigner, issue_unsubscribe_token
from alumni_kit.db import Conn
from alumni_kit.logs import where_it_failed
from alumni_kit.outbox import OutboxMessage, add_to_outbox
from alumni_kit.runtime import ServiceRuntime
from mailer import bounces, campaigns, compose
from mailer.metrics import MailerMetrics
from mailer.settings import MailerSettings
from mailer.smtp import (
    PermanentRejectionError,
    RelayUnavailableError,
    SmtpPool,
    TransientRejectionError,
    UncertainOutcomeError,
)
from mailer.tracking import TrackingLinks
from usn_schemas.campaign import EmailBounced, EmailBouncedV1, NewsletterSent, NewsletterSentV1

log = logging.getLogger(__name__)
SOURCE = "/usn-alumni/mailer"
_SENDER_LOCK = 7_340_101

_CLAIM = """
WITH due AS (
    SELECT d.id FROM deliveries d JOIN campaigns c USING (campaign_id)
     WHERE d.state = 'pending' AND d.next_attempt_at <= now() AND c.status = 'sending'
     ORDER BY d.next_attempt_at, d.id
     LIMIT $1
     FOR UPDATE OF d SKIP LOCKED)
SELECT d.id, d.campaign_id, d.member_id, c.purpose, c.faculty, m.email, m.given_name, m.family_name,
       (e.member_id IS NOT NULL) AS erased, (s.address IS NOT NULL) AS suppressed,
       v.fact_id AS consent_fact_id
  FROM due JOIN deliveries d USING (id) JOIN campaigns c USING (campaign_id)
  LEFT JOIN members m ON m.member_id = d.member_id
  LEFT JOIN erased_members e ON e.member_id = d.member_id
  LEFT JOIN suppressions s ON s.address = lower(m.email)
  LEFT JOIN consent_view v ON v.member_id = d.member_id AND v.channel = 'email' AND v.purpose = c.purpose
                          AND v.state = 'given'
"""

_CLAIM_TRANSACTIONAL = """
WITH due AS (
    SELECT id FROM transactional
     WHERE state = 'pending' AND next_attempt_at <= now()
     ORDER BY next_attempt_at, id
     LIMIT $1
     FOR UPDATE SKIP LOCKED)
SELECT t.id, t.member_id, t.mail, (e.member_id IS NOT NULL) AS erased, (s.address IS NOT NULL) AS suppressed
  FROM due JOIN transactional t USING (id)
  LEFT JOIN erased_members e ON e.member_id = t.member_id
  LEFT JOIN suppressions s ON s.address = lower(t.mail->>'to_address')
"""

# Right before the SMTP transaction: is the consent the claim relied on still the newest fact?
_STILL_ALLOWED = """
SELECT v.fact_id FROM consent_view v
 WHERE v.member_id = $1 AND v.channel = 'email' AND v.purpose = $2 AND v.state = 'given'
   AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.address = lower($3))
   AND NOT EXISTS (SELECT 1 FROM erased_members e WHERE e.member_id = $1)
"""


@dataclass
class Delivery:
    """One message in flight: a campaign delivery (table `deliveries`) or a transactional mail."""

    table: str
    id: int
    member_id: str | None
    address: str
    campaign_id: str | None = None
    faculty: str = "USN"
    purpose: str = ""
    recipient: compose.Recipient | None = None
    consent_fact_id: str | None = None
    mail: dict[str, Any] | None = None  # transactional only
    message_id: str = ""
    outcome: str = ""  # sent | skipped | retry | bounced | failed | unavailable | uncertain
    detail: str = ""
    status_code: str = ""

    @property
    def reference(self) -> str:
        """The VERP reference: which delivery a bounce is about."""
        return f"{'c' if self.table == 'deliveries' else 't'}{self.id}"


def skip_reason(row: Any) -> str | None:
    """Why a claimed campaign delivery is not sent, from the mailer's local copies (None: send)."""
    if row["erased"]:
        return "erased"
    if row["given_name"] is None:
        return "unknown-member"
    if row["email"] is None:
        return "no-address"
    if row["suppressed"]:
        return "suppressed"
    if row["consent_fact_id"] is None:
        return "no-consent"
    return None


def transactional_skip_reason(row: Any, mail: dict[str, Any]) -> str | None:
    """Transactional mail ignores marketing consent, not suppression or erasure."""
    if row["erased"]:
        return "erased"
    if row["suppressed"]:
        return "suppressed"
    expires = mail.get("expires_at")
    if expires and datetime.fromisoformat(expires) < datetime.now(UTC):
        return "expired"
    return None


class Sender:
    def __init__(
        self,
        runtime: ServiceRuntime,
        settings: MailerSettings,
        signer: TokenSigner,
        tracking: TrackingLinks,
        metrics: MailerMetrics,
    ) -> None:
        self._runtime, self._s, self._signer, self._tracking = runtime, settings, signer, tracking
        self._metrics = metrics
        self._smtp = SmtpPool(settings)
        self._stopping = asyncio.Event()
        self._paused_backoff = 0.0
        self._prepared: dict[str, compose.Prepared | compose.TemplateProblemError] = {}
        self._recording: asyncio.Task[None] | None = None
        self._from = Address(display_name=settings.from_name, addr_spec=settings.from_address)
        self._bounce_key = signer.derived_keys("verp")[0]

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Wait to be the one sender, then send until stopped; survives outages."""
        while not self._stopping.is_set():
            try:
                async with self._runtime.pool.acquire() as lock_conn:
                    if not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", _SENDER_LOCK):
                        await self._sleep(2.0)
                        continue
                    try:
                        await self._resolve_leftovers()
                        await self._send_until_stopped()
                    finally:
                        with contextlib.suppress(Exception):
                            await lock_conn.execute("SELECT pg_advisory_unlock($1)", _SENDER_LOCK)
            except Exception as exc:
                log.error("sender failed (%s); starting over", where_it_failed(exc))
                await self._sleep(1.0)
        await self._smtp.close()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _resolve_leftovers(self) -> None:
        """Rows still `sending` belong to a sender that died mid-round: their outcome is unknown."""
        why = "the sender stopped between handing it to SMTP and recording the result"
        async with self._runtime.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "UPDATE deliveries SET state = 'uncertain', reason = $1, updated_at = now()"
                " WHERE state = 'sending' RETURNING campaign_id",
                why,
            )
            transactional = await conn.fetchval(
                "WITH u AS (UPDATE transactional SET state = 'uncertain', reason = $1, updated_at = now()"
                " WHERE state = 'sending' RETURNING 1) SELECT count(*) FROM u",
                why,
            )
            for campaign_id in {r["campaign_id"] for r in rows}:
                await campaigns.publish_status(conn, campaign_id)
        if rows or transactional:
            log.warning(
                "%d deliveries and %d transactional mails were in flight when the last sender stopped: marked"
                " uncertain",
                len(rows),
                transactional,
            )
            self._metrics.deliveries.labels("uncertain").inc(len(rows) + transactional)

    async def _send_until_stopped(self) -> None:
        try:
            while not self._stopping.is_set():
                await self._start_due_campaigns()
                sent = await self._round(await self._claim_transactional())
                sent += await self._round(await self._claim_campaign_deliveries())
                if self._paused_backoff:
                    await self._settle()
                    await self._sleep(self._paused_backoff)
                elif sent == 0:
                    await self._settle()
                    await self._finish_campaigns()
                    await self._sleep(0.2)
        finally:
            await self._settle()

    async def _start_due_campaigns(self) -> None:
        async with self._runtime.pool.acquire() as conn, conn.transaction():
            due = await conn.fetch(
                "SELECT campaign_id FROM campaigns WHERE status = 'scheduled' AND send_at <= now()"
                " ORDER BY send_at FOR UPDATE SKIP LOCKED"
            )
            for row in due:
                count = await campaigns.resolve_audience(conn, row["campaign_id"])
                log.info("campaign %s: %d recipients", row["campaign_id"], count)

    async def _finish_campaigns(self) -> None:
        async with self._runtime.pool.acquire() as conn, conn.transaction():
            done = await conn.fetch(
                """UPDATE campaigns c SET status = 'done', finished_at = now()
                    WHERE status = 'sending' AND NOT EXISTS (
                          SELECT 1 FROM deliveries d
                           WHERE d.campaign_id = c.campaign_id AND d.state IN ('pending', 'sending'))
                   RETURNING campaign_id"""
            )
            for row in done:
                self._prepared.pop(row["campaign_id"], None)
                await campaigns.publish_status(conn, row["campaign_id"])
                log.info("campaign %s: done", row["campaign_id"])

    # ---- claiming: decide from the local copies, mark `sending`, commit before SMTP ----------------------

    async def _claim_campaign_deliveries(self) -> list[Delivery]:
        async with self._runtime.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_CLAIM, self._s.claim_batch)
            skipped = [(r["id"], reason) for r in rows if (reason := skip_reason(r))]
            chosen = [_campaign_delivery(r) for r in rows if not skip_reason(r)]
            await self._mark(conn, "deliveries", skipped, chosen)
        return chosen

    async def _claim_transactional(self) -> list[Delivery]:
        async with self._runtime.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_CLAIM_TRANSACTIONAL, self._s.claim_batch)
            skipped, chosen = [], []
            for r in rows:
                mail = json.loads(r["mail"])
                reason = transactional_skip_reason(r, mail)
                if reason:
                    skipped.append((r["id"], reason))
                else:
                    chosen.append(Delivery("transactional", r["id"], r["member_id"], mail["to_address"], mail=mail))
            await self._mark(conn, "transactional", skipped, chosen)
        return chosen

    async def _mark(self, conn: Conn, table: str, skipped: list[tuple[int, str]], chosen: list[Delivery]) -> None:
        if skipped:
            await conn.executemany(
                f"UPDATE {table} SET state = 'skipped', reason = $2, updated_at = now() WHERE id = $1", skipped
            )
            for _, reason in skipped:
                self._metrics.skipped.labels(reason).inc()
        if chosen:
            for d in chosen:
                d.message_id = compose.new_message_id(self._s.message_id_domain)
            await conn.executemany(
                f"UPDATE {table} SET state = 'sending', attempts = attempts + 1, message_id = $2, updated_at = now()"
                " WHERE id = $1",
                [(d.id, d.message_id) for d in chosen],
            )

    # ---- sending -----------------------------------------------------------------------------------------

    async def _round(self, batch: list[Delivery]) -> int:
        if not batch:
            return 0
        content = await self._campaign_content({d.campaign_id for d in batch if d.campaign_id})
        limit = asyncio.Semaphore(self._smtp.size)

        async def send(d: Delivery) -> None:
            async with limit:
                await self._send_one(d, content.get(d.campaign_id or ""))

        rest = batch
        if self._paused_backoff:
            # Paused: one message probes the relay; the rest wait for a later round unless it answers.
            await send(batch[0])
            rest = batch[1:]
            if self._paused_backoff:
                for d in rest:
                    d.outcome = "unavailable"
                rest = []
        await asyncio.gather(*(send(d) for d in rest))
        # The results are committed while the next batch is claimed and sent: the SMTP
        # connections do not wait for the database. At most one batch is recorded at a time.
        await self._settle()
        self._recording = asyncio.create_task(self._record(batch), name="mailer-record")
        return len(batch)

    async def _settle(self) -> None:
        """Wait until the last batch's results are committed (its rows stay `sending` till then)."""
        if self._recording is not None:
            task, self._recording = self._recording, None
            await task

    async def _campaign_content(self, ids: set[str]) -> dict[str, compose.Prepared | compose.TemplateProblemError]:
        """Each campaign rendered once (kept while it sends), or why it cannot be."""
        missing = ids - self._prepared.keys()
        if missing:
            async with self._runtime.pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT campaign_id, faculty, subject, body_markdown, language, track_opens FROM campaigns"
                    " WHERE campaign_id = any($1::text[])",
                    list(missing),
                )
            for r in rows:
                try:
                    self._prepared[r["campaign_id"]] = compose.Prepared(compose.Campaign(**dict(r)), self._from)
                except compose.TemplateProblemError as exc:
                    self._prepared[r["campaign_id"]] = exc
        return {i: self._prepared[i] for i in ids if i in self._prepared}

    async def _send_one(self, d: Delivery, campaign: compose.Prepared | compose.TemplateProblemError | None) -> None:
        if isinstance(campaign, compose.TemplateProblemError):
            d.outcome, d.detail = "failed", f"template {campaign}"
            return
        try:
            data = await self._message(d, campaign)
        except Exception as exc:  # one message that cannot be built must not take its batch down
            log.error("delivery %s: the message could not be built (%s)", d.reference, where_it_failed(exc))
            d.outcome, d.detail = "failed", f"composing failed: {type(exc).__name__}"
            return
        if data is None:
            d.outcome, d.detail = "skipped", "no-consent"  # withdrawn (or suppressed) since the claim
            return
        envelope = bounces.return_path(d.reference, self._bounce_key, self._s.bounce_local_part, self._s.bounce_domain)
        await self._deliver(d, envelope, data)

    async def _message(self, d: Delivery, campaign: compose.Prepared | None) -> bytes | None:
        if d.mail is not None:
            return compose.build_transactional(d.mail, self._from, d.message_id).as_bytes()
        assert campaign is not None
        assert d.recipient is not None
        async with self._runtime.pool.acquire() as conn:
            fact = await conn.fetchval(_STILL_ALLOWED, d.member_id, d.purpose, d.address)
        if fact is None:
            return None
        d.consent_fact_id = fact
        return campaign.render(d.recipient, self._links(d, campaign.campaign), d.message_id)

    async def _deliver(self, d: Delivery, envelope: str, data: bytes) -> None:
        try:
            await self._smtp.send(envelope, d.address, data)
            d.outcome = "sent"
            self._resume()
        except TransientRejectionError as exc:
            d.outcome, d.detail, d.status_code = "retry", str(exc), str(exc.code)
        except PermanentRejectionError as exc:
            d.outcome, d.detail, d.status_code = "bounced", str(exc), _enhanced_status(exc.message, exc.code)
        except RelayUnavailableError as exc:
            d.outcome, d.detail = "unavailable", str(exc)
            self._pause(str(exc))
        except UncertainOutcomeError as exc:
            d.outcome, d.detail = "uncertain", str(exc)

    def _links(self, d: Delivery, campaign: compose.Campaign) -> compose.Links:
        assert d.member_id is not None
        assert d.campaign_id is not None
        member_id, campaign_id = d.member_id, d.campaign_id
        token = issue_unsubscribe_token(self._signer, member_id, d.purpose, self._s.unsubscribe_link_days * 86400)
        return compose.Links(
            unsubscribe_url=f"{self._s.consent_base_url.rstrip('/')}/unsubscribe/{token}",
            unsubscribe_mailto=self._s.unsubscribe_mailto,
            click=lambda url: self._tracking.click(campaign_id, member_id, url),
            open_pixel=self._tracking.open_pixel(campaign_id, member_id) if campaign.track_opens else None,
        )

    def _pause(self, why: str) -> None:
        if not self._paused_backoff:
            log.warning("SMTP relay unavailable (%s): sending paused", why)
            self._metrics.paused.inc()
        self._paused_backoff = min(max(self._paused_backoff * 2, 0.5), 5.0)

    def _resume(self) -> None:
        if self._paused_backoff:
            log.info("SMTP relay answers again: sending resumed")
        self._paused_backoff = 0.0

    # ---- recording ---------------------------------------------------------------------------------------

    async def _record(self, batch: list[Delivery]) -> None:
        now = datetime.now(UTC)
        facts: list[OutboxMessage] = []
        sent = [d for d in batch if d.outcome == "sent"]
        async with self._runtime.pool.acquire() as conn, conn.transaction():
            await _record_sent(conn, sent)  # the common case: one statement per table
            facts.extend(self._sent_fact(d, now) for d in sent if d.table == "deliveries")
            for d in batch:
                if d.outcome != "sent":
                    await self._record_one(conn, d, facts)
                self._metrics.deliveries.labels(d.outcome).inc()
            await add_to_outbox(conn, facts)
            touched = {d.campaign_id for d in batch if d.campaign_id}
            if any(d.outcome == "unavailable" for d in batch):
                for campaign_id in touched:
                    await campaigns.publish_status(conn, campaign_id, paused=True)

    async def _record_one(self, conn: Conn, d: Delivery, facts: list[OutboxMessage]) -> None:
        if d.outcome in ("skipped", "failed", "uncertain"):
            await _set_state(conn, d, d.outcome, d.detail)
        elif d.outcome == "unavailable":
            await conn.execute(
                f"UPDATE {d.table} SET state = 'pending', attempts = attempts - 1, updated_at = now() WHERE id = $1",
                d.id,
            )
        elif d.outcome == "retry":
            await self._retry_later(conn, d)
        elif d.outcome == "bounced":
            await _set_state(conn, d, "bounced", d.detail)
            facts.append(await suppress(conn, d.address, "hard-bounce", d.status_code, d.member_id, d.campaign_id))

    async def _retry_later(self, conn: Conn, d: Delivery) -> None:
        attempts = await conn.fetchval(f"SELECT attempts FROM {d.table} WHERE id = $1", d.id)
        if attempts >= self._s.max_attempts:
            await _set_state(conn, d, "failed", f"gave up after {attempts} attempts: {d.detail}")
            return
        delay = timedelta(seconds=self._s.retry_base_seconds * 2 ** (attempts - 1))
        await conn.execute(
            f"UPDATE {d.table} SET state = 'pending', reason = $2, next_attempt_at = now() + $3, updated_at = now()"
            " WHERE id = $1",
            d.id,
            d.detail,
            delay,
        )

    def _sent_fact(self, d: Delivery, now: datetime) -> OutboxMessage:
        assert d.member_id is not None
        assert d.campaign_id is not None
        assert d.consent_fact_id is not None
        data = NewsletterSent.model_validate(
            {
                "campaign_id": d.campaign_id,
                "member_id": d.member_id,
                "faculty": d.faculty,
                "purpose": d.purpose,
                "message_id": d.message_id,
                "consent_fact_id": d.consent_fact_id,
                "sent_at": now,
            }
        )
        event = NewsletterSentV1.create(subject=d.member_id, data=data, source=SOURCE)
        return OutboxMessage(topic="newsletter-sent", key=d.member_id, event=event)


async def _record_sent(conn: Conn, sent: list[Delivery]) -> None:
    campaign = [d for d in sent if d.table == "deliveries"]
    if campaign:
        await conn.execute(
            """UPDATE deliveries d SET state = 'sent', message_id = u.message_id, consent_fact_id = u.fact,
                      address = u.address, updated_at = now()
                 FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS u(id, message_id, fact, address)
                WHERE d.id = u.id""",
            [d.id for d in campaign],
            [d.message_id for d in campaign],
            [d.consent_fact_id for d in campaign],
            [d.address for d in campaign],
        )
    transactional = [d for d in sent if d.table == "transactional"]
    if transactional:
        await conn.execute(
            "UPDATE transactional SET state = 'sent', updated_at = now() WHERE id = any($1::bigint[])",
            [d.id for d in transactional],
        )


def _campaign_delivery(row: Any) -> Delivery:
    return Delivery(
        table="deliveries",
        id=row["id"],
        member_id=row["member_id"],
        address=row["email"],
        campaign_id=row["campaign_id"],
        faculty=row["faculty"],
        purpose=row["purpose"],
        recipient=compose.Recipient(row["member_id"], row["email"], row["given_name"], row["family_name"]),
        consent_fact_id=row["consent_fact_id"],
    )


def _enhanced_status(message: str, code: int) -> str:
    """'5.1.1' from '5.1.1 user unknown', else the class from the reply code."""
    first = message.split(" ", 1)[0]
    return first if first.count(".") == 2 and first[0] in "245" else f"{str(code)[0]}.0.0"


async def _set_state(conn: Conn, d: Delivery, state: str, reason: str) -> None:
    await conn.execute(
        f"UPDATE {d.table} SET state = $2, reason = $3, updated_at = now() WHERE id = $1", d.id, state, reason
    )


async def suppress(
    conn: Conn, address: str, reason: str, status: str, member_id: str | None, campaign_id: str | None
) -> OutboxMessage:
    """Stop all mail to `address`, and say so on `email-bounced`."""
    await conn.execute(
        "INSERT INTO suppressions (address, reason, status) VALUES (lower($1), $2, $3) ON CONFLICT DO NOTHING",
        address,
        reason,
        status,
    )
    data = EmailBounced(
        member_id=member_id,
        campaign_id=campaign_id,
        address=address,
        kind="hard" if reason == "hard-bounce" else "soft",
        status=status,
        suppressed=True,
        bounced_at=datetime.now(UTC),
    )
    event = EmailBouncedV1.create(subject=member_id or "unknown-member", data=data, source=SOURCE)
    return OutboxMessage(topic="email-bounced", key=member_id or address, event=event)
