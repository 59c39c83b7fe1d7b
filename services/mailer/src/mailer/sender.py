"""The send loop: due campaigns → deliveries → SMTP, at most once per (campaign, member).

One sender per database sends (an advisory lock; other replicas wait as standbys),
so a delivery is only ever in one process's hands. It keeps its SMTP connections busy:

0. render: each campaign that starts sending is rendered once, in the render worker
   (rendering.py), before any of its deliveries is claimed; one that cannot be is
   failed alone, and only rendered campaigns' deliveries are ever claimed;
1. claim: a batch of due deliveries is decided from the mailer's local copies (member,
   consent view, suppression): skipped ones get their reason; the rest are marked
   `sending`, with the consent fact and address, committed *before* any SMTP traffic,
   and queued (transactional mail first);
2. send: one worker per SMTP connection takes the next queued message, re-checks consent
   and suppression right before its SMTP transaction (one query answers what all
   connections are about to send, recheck.py: a withdrawal that arrived meanwhile wins),
   then sends;
3. record: once a batch's worth of messages has an outcome they are committed in one
   transaction (recording.py) while the connections go on with the queue.

Another batch is claimed only while at most one is in flight, so claimed deliveries
whose outcome is not yet committed are at most two batches (2 × `MAILER_CLAIM_BATCH`).
A process killed meanwhile leaves them `sending`; the next sender marks them
`uncertain` instead of sending them again, listed in the staff API (docs/mailer.md,
"Uncertain").
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import secrets
import time
from email.headerregistry import Address

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from alumni_kit.auth import TokenSigner, issue_member_link, issue_unsubscribe_token
from alumni_kit.db import Conn
from alumni_kit.logs import where_it_failed
from alumni_kit.runtime import ServiceRuntime
from alumni_kit.tracing import start_span, tracing_enabled
from mailer import bounces, campaigns, compose
from mailer.bodies import TemplateProblemError
from mailer.delivery import Delivery, campaign_delivery, in_language, skip_reason, transactional_skip_reason
from mailer.metrics import MailerMetrics
from mailer.recheck import ConsentRecheck
from mailer.recording import Recorder, enhanced_status
from mailer.rendering import Renderer, RendererUnavailableError
from mailer.settings import MailerSettings
from mailer.smtp import (
    PermanentRejectionError,
    RelayUnavailableError,
    SmtpPool,
    TransientRejectionError,
    UncertainOutcomeError,
)
from mailer.tracking import TrackingLinks

log = logging.getLogger(__name__)
_SENDER_LOCK = 7_340_101
# While sending, due campaigns are looked for at most this often (when idle, every round).
_DUE_CAMPAIGNS_EVERY = 1.0

_CLAIM = """
WITH due AS (
    SELECT d.id FROM deliveries d JOIN campaigns c USING (campaign_id)
     WHERE d.state = 'pending' AND d.next_attempt_at <= now() AND c.status = 'sending'
       AND c.campaign_id = any($2::text[])
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
SELECT t.id, t.member_id, t.mail, t.trace_context,
       (e.member_id IS NOT NULL) AS erased, (s.address IS NOT NULL) AS suppressed,
       coalesce(t.mail->>'to_address', m.email) AS address, m.given_name, m.language
  FROM due JOIN transactional t USING (id)
  LEFT JOIN erased_members e ON e.member_id = t.member_id
  -- A request with a member id only (events) goes to the address in the mailer's member copy.
  LEFT JOIN members m ON m.member_id = t.member_id AND t.mail->>'to_address' IS NULL
  LEFT JOIN suppressions s ON s.address = lower(coalesce(t.mail->>'to_address', m.email))
"""


class Sender:
    def __init__(
        self,
        runtime: ServiceRuntime,
        settings: MailerSettings,
        signer: TokenSigner,
        tracking: TrackingLinks,
        metrics: MailerMetrics,
        renderer: Renderer,
    ) -> None:
        self._runtime, self._s, self._signer, self._tracking = runtime, settings, signer, tracking
        self._renderer = renderer
        self._metrics = metrics
        self._recorder = Recorder(settings, metrics, runtime.keyring)
        self._smtp = SmtpPool(settings)
        self._stopping = asyncio.Event()
        self._paused_backoff = 0.0
        # Each sending campaign rendered once; only these campaigns' deliveries are claimed.
        self._prepared: dict[str, compose.Prepared] = {}
        self._from = Address(display_name=settings.from_name, addr_spec=settings.from_address)
        self._bounce_key = signer.derived_keys("verp")[0]
        # The flight: claimed and not yet recorded = queued + on a connection + done.
        self._queue: collections.deque[Delivery] = collections.deque()
        self._queued = asyncio.Event()  # the workers' wake-up
        self._done: list[Delivery] = []
        self._in_flight = 0
        self._progress = asyncio.Event()  # the loop's wake-up: something to record, or stop
        self._recheck: ConsentRecheck | None = None
        self._due_checked = 0.0

    def stop(self) -> None:
        self._stopping.set()
        self._progress.set()

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

    # ---- the loop: claim ahead, record behind, the connections send in between -------------------------

    async def _send_until_stopped(self) -> None:
        # The re-check has a connection of its own: one query per wave of messages, no pool traffic.
        async with self._runtime.pool.acquire() as recheck_conn:
            self._recheck = ConsentRecheck(recheck_conn)
            workers = [asyncio.create_task(self._connection(), name=f"mailer-smtp-{i}") for i in range(self._smtp.size)]
            try:
                await self._keep_sending()
            finally:
                await self._wind_down(workers)

    async def _keep_sending(self) -> None:
        while not self._stopping.is_set():
            if self._recheck and self._recheck.failure:
                raise self._recheck.failure
            await self._start_due_campaigns()
            claimed = await self._top_up()
            if self._done and self._record_due():
                await self._record_done()
            elif not claimed and not self._in_flight:
                await self._finish_campaigns()
                await self._sleep(self._paused_backoff or 0.2)
            else:
                await self._wait_for_progress()

    def _record_due(self) -> bool:
        """A batch's worth has an outcome, or everything in flight has one."""
        return len(self._done) >= self._s.claim_batch or len(self._done) == self._in_flight

    async def _wait_for_progress(self) -> None:
        self._progress.clear()
        if self._record_due() or self._stopping.is_set():
            return
        # Woken by the workers; the timeout lets new campaigns start beside a long one.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._progress.wait(), timeout=_DUE_CAMPAIGNS_EVERY)

    async def _record_done(self) -> None:
        batch, self._done = self._done, []
        try:
            async with self._runtime.pool.acquire() as conn:
                await self._recorder.record(conn, batch)
        except BaseException:
            self._done = batch + self._done  # not committed: still in flight
            raise
        self._in_flight -= len(batch)

    async def _wind_down(self, workers: list[asyncio.Task[None]]) -> None:
        """Stopping or failing: what is queued was never handed to SMTP and goes back to `pending`;
        the messages on a connection finish; then every outcome is recorded if the database lets us."""
        for d in self._queue:
            d.outcome, d.detail = "deferred", "the sender stopped before sending it"
            self._done.append(d)
        self._queue.clear()
        while len(self._done) < self._in_flight:
            self._progress.clear()
            await self._progress.wait()
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        try:
            if self._done:
                await self._record_done()
        except Exception as exc:  # they stay `sending`: the next sender marks them uncertain
            log.error("the last outcomes could not be recorded (%s)", where_it_failed(exc))
        self._done, self._in_flight, self._recheck = [], 0, None

    async def _start_due_campaigns(self) -> None:
        now = time.monotonic()
        if self._in_flight and now - self._due_checked < _DUE_CAMPAIGNS_EVERY:
            return
        self._due_checked = now
        async with self._runtime.pool.acquire() as conn, conn.transaction():
            due = await conn.fetch(
                "SELECT campaign_id FROM campaigns WHERE status = 'scheduled' AND send_at <= now()"
                " ORDER BY send_at FOR UPDATE SKIP LOCKED"
            )
            for row in due:
                count = await campaigns.resolve_audience(conn, row["campaign_id"])
                log.info("campaign %s: %d recipients", row["campaign_id"], count)
        await self._prepare_campaigns()

    async def _prepare_campaigns(self) -> None:
        """Render each sending campaign once, before any of its deliveries is claimed, outside
        any transaction (the render worker bounds the wait: MAILER_RENDER_TIMEOUT_SECONDS).

        A campaign that cannot be rendered (accepted before it was checked, or over a bound
        at send time) is failed alone: the claim never takes its deliveries, so it cannot
        stop other campaigns or transactional mail."""
        async with self._runtime.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT campaign_id, faculty, subject, body_markdown, language, track_opens, member_link_url,"
                " member_link_days FROM campaigns"
                " WHERE status = 'sending' AND NOT (campaign_id = any($1::text[]))",
                list(self._prepared),
            )
        for r in rows:
            campaign = compose.Campaign(**dict(r))
            try:
                self._prepared[campaign.campaign_id] = await self._renderer.prepare(campaign)
            except TemplateProblemError as exc:
                await self._fail_campaign(campaign.campaign_id, f"template {exc}")
            except RendererUnavailableError as exc:  # the mailer's trouble: tried again next round
                log.warning("campaign %s cannot be rendered now (%s)", campaign.campaign_id, exc)

    async def _fail_campaign(self, campaign_id: str, reason: str) -> None:
        async with self._runtime.pool.acquire() as conn, conn.transaction():
            skipped = await campaigns.fail(conn, campaign_id, reason)
        log.error("campaign %s failed (%s): %d deliveries not sent", campaign_id, reason, skipped)
        self._metrics.skipped.labels("campaign-failed").inc(skipped)

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

    async def _top_up(self) -> int:
        """Claim another batch if at most one is in flight; while paused, one probe when nothing is."""
        if self._paused_backoff:
            if self._in_flight:
                return 0
            await self._sleep(self._paused_backoff)
            room = 1
        else:
            room = 2 * self._s.claim_batch - self._in_flight
            if room < self._s.claim_batch:
                return 0
        async with self._runtime.pool.acquire() as conn, conn.transaction():
            transactional = await self._claim_transactional(conn, room)
            claimed = transactional + await self._claim_campaign_deliveries(conn, room - len(transactional))
        if not claimed:
            return 0
        # Committed: from here on nothing waits before they are in flight (and recorded in the end).
        claimed[0].probe = bool(self._paused_backoff)
        self._in_flight += len(claimed)
        self._queue.extendleft(reversed(transactional))  # before campaign mail
        self._queue.extend(claimed[len(transactional) :])
        self._queued.set()
        return len(claimed)

    async def _claim_campaign_deliveries(self, conn: Conn, limit: int) -> list[Delivery]:
        if limit <= 0:
            return []
        rows = await conn.fetch(_CLAIM, limit, list(self._prepared))
        skipped = [(r["id"], reason) for r in rows if (reason := skip_reason(r))]
        chosen = [campaign_delivery(r) for r in rows if not skip_reason(r)]
        await self._mark(conn, "deliveries", skipped, chosen)
        return chosen

    async def _claim_transactional(self, conn: Conn, limit: int) -> list[Delivery]:
        rows = await conn.fetch(_CLAIM_TRANSACTIONAL, limit)
        skipped, chosen = [], []
        for r in rows:
            mail = json.loads(r["mail"])
            reason = transactional_skip_reason(r, mail)
            if reason:
                skipped.append((r["id"], reason))
            else:
                mail = in_language(mail, r["language"])
                mail = {**mail, "to_address": r["address"], "to_name": mail.get("to_name") or r["given_name"]}
                delivery = Delivery("transactional", r["id"], r["member_id"], r["address"], mail=mail)
                delivery.trace_context = json.loads(r["trace_context"])
                chosen.append(delivery)
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
            await conn.execute(
                f"""UPDATE {table} t SET state = 'sending', attempts = attempts + 1, message_id = u.message_id,
                           updated_at = now()
                      FROM unnest($1::bigint[], $2::text[]) AS u(id, message_id) WHERE t.id = u.id""",
                [d.id for d in chosen],
                [d.message_id for d in chosen],
            )

    # ---- sending: one worker per SMTP connection ---------------------------------------------------------

    async def _connection(self) -> None:
        while True:
            while not self._queue:
                self._queued.clear()
                await self._queued.wait()
            d = self._queue.popleft()
            try:
                await self._send_one(d)
            except Exception as exc:  # a bug, not an SMTP answer: it may have been accepted
                log.error("delivery %s: sending failed (%s)", d.reference, where_it_failed(exc))
                d.outcome, d.detail = "uncertain", f"sending failed: {type(exc).__name__}"
            self._done.append(d)
            if self._record_due() or self._paused_backoff:
                self._progress.set()

    async def _send_one(self, d: Delivery) -> None:
        if self._paused_backoff and not d.probe:
            d.outcome, d.detail = "unavailable", "the relay is down"
            return
        campaign = self._prepared.get(d.campaign_id or "")
        if d.mail is None and campaign is None:  # not claimed so; back to pending untried
            d.outcome, d.detail = "deferred", "the campaign is not rendered"
            return
        data = await self._message(d, campaign)
        if data is None:
            return  # the outcome says why
        envelope = bounces.return_path(d.reference, self._bounce_key, self._s.bounce_local_part, self._s.bounce_domain)
        await self._deliver(d, envelope, data)

    async def _message(self, d: Delivery, campaign: compose.Prepared | None) -> bytes | None:
        if d.mail is None:
            assert self._recheck is not None
            try:
                fact = await self._recheck.fact(d)
            except Exception as exc:
                d.outcome, d.detail = "deferred", f"consent could not be re-checked: {type(exc).__name__}"
                return None
            if fact is None:
                d.outcome, d.detail = "skipped", "no-consent"  # withdrawn (or suppressed) since the claim
                return None
            d.consent_fact_id = fact
        try:
            if d.mail is not None:
                return compose.build_transactional(d.mail, self._from, d.message_id).as_bytes()
            assert campaign is not None
            assert d.recipient is not None
            return campaign.render(d.recipient, self._links(d, campaign.campaign), d.message_id)
        except Exception as exc:  # one message that cannot be built must not take its batch down
            log.error("delivery %s: the message could not be built (%s)", d.reference, where_it_failed(exc))
            d.outcome, d.detail = "failed", f"composing failed: {type(exc).__name__}"
            return None

    async def _deliver(self, d: Delivery, envelope: str, data: bytes) -> None:
        """Hand the message to the relay; a mail that came with a trace context does so
        inside an `smtp send` span continuing it (the end of the graduate's trace)."""
        if not (tracing_enabled() and d.trace_context):
            await self._hand_off(d, envelope, data)
            self._count_hand_off(d)
            return
        attributes: dict[str, str | int] = {
            "server.address": self._s.smtp_host,
            "server.port": self._s.smtp_port,
            "mailer.delivery": d.reference,
        }
        if d.mail is not None:
            attributes["mailer.mail.kind"] = str(d.mail.get("kind", ""))
        span = start_span("smtp send", d.trace_context, SpanKind.CLIENT, attributes)
        with trace.use_span(span, end_on_exit=True):
            await self._hand_off(d, envelope, data)
            span.set_attribute("mailer.outcome", d.outcome)
            if d.outcome != "sent":
                span.set_status(Status(StatusCode.ERROR, d.outcome))
        self._count_hand_off(d)

    def _count_hand_off(self, d: Delivery) -> None:
        self._metrics.smtp_sends.labels(d.outcome).inc()
        if d.outcome == "bounced":  # a 5xx at the hand-off: a hard bounce without a DSN
            self._metrics.email_bounces.labels("hard").inc()

    async def _hand_off(self, d: Delivery, envelope: str, data: bytes) -> None:
        try:
            await self._smtp.send(envelope, d.address, data)
            d.outcome = "sent"
            self._resume()
        except TransientRejectionError as exc:
            d.outcome, d.detail, d.status_code = "retry", str(exc), str(exc.code)
        except PermanentRejectionError as exc:
            d.outcome, d.detail, d.status_code = "bounced", str(exc), enhanced_status(exc.message, exc.code)
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
            member_link=self._member_link(member_id, d.purpose, campaign),
        )

    def _member_link(self, member_id: str, purpose: str, campaign: compose.Campaign) -> str | None:
        """Her own link (campaigns' `member_link`): a member link of the campaign's purpose, as
        `alumni-token member-link` issues, with a fresh nonce, where the URL says {token}."""
        if not campaign.member_link_url:
            return None
        ttl = (campaign.member_link_days or 30) * 86400
        token = issue_member_link(self._signer, member_id, purpose, ttl, secrets.token_urlsafe(12))
        return campaign.member_link_url.replace("{token}", token)

    def _pause(self, why: str) -> None:
        if not self._paused_backoff:
            log.warning("SMTP relay unavailable (%s): sending paused", why)
            self._metrics.paused.inc()
        self._paused_backoff = min(max(self._paused_backoff * 2, 0.5), 5.0)

    def _resume(self) -> None:
        if self._paused_backoff:
            log.info("SMTP relay answers again: sending resumed")
        self._paused_backoff = 0.0
