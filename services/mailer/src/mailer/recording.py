"""The outcomes of sent messages, committed in one transaction per batch.

`sent` with the message id and consent fact and a `newsletter-sent` event through the
outbox; a 4xx back to `pending` with back-off; a 5xx `bounced` and suppressed; nothing
accepted (the relay is down, or consent could not be re-checked) back to `pending`.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from alumni_kit.db import Conn
from alumni_kit.outbox import OutboxMessage, add_to_outbox
from alumni_kit.shredding import KeyRing
from mailer import SOURCE, campaigns
from mailer.delivery import Delivery
from mailer.metrics import MailerMetrics
from mailer.settings import MailerSettings
from usn_schemas.campaign import EmailBounced, EmailBouncedV1, NewsletterSent, NewsletterSentV1

# Nothing reached the relay: the delivery is as if never claimed (its attempt is not counted).
NOT_ATTEMPTED = ("unavailable", "deferred")


class Recorder:
    def __init__(self, settings: MailerSettings, metrics: MailerMetrics, keyring: KeyRing) -> None:
        self._s, self._metrics, self._keyring = settings, metrics, keyring

    async def record(self, conn: Conn, batch: list[Delivery]) -> None:
        """Commit the outcomes of `batch` (one transaction) and count them."""
        now = datetime.now(UTC)
        sent = [d for d in batch if d.outcome == "sent"]
        async with conn.transaction():
            await _record_sent(conn, sent)  # the common case: one statement per table
            facts = [_sent_fact(d, now) for d in sent if d.table == "deliveries"]
            for d in batch:
                if d.outcome != "sent":
                    await self._record_one(conn, d, facts)
            await add_to_outbox(conn, facts)
            if any(d.outcome == "unavailable" for d in batch):
                for campaign_id in {d.campaign_id for d in batch if d.campaign_id}:
                    await campaigns.publish_status(conn, campaign_id, paused=True)
        for outcome, count in collections.Counter(d.outcome for d in batch).items():
            self._metrics.deliveries.labels(outcome).inc(count)

    async def _record_one(self, conn: Conn, d: Delivery, facts: list[OutboxMessage]) -> None:
        if d.outcome in ("skipped", "failed", "uncertain"):
            await _set_state(conn, d, d.outcome, d.detail)
        elif d.outcome in NOT_ATTEMPTED:
            await conn.execute(
                f"UPDATE {d.table} SET state = 'pending', attempts = attempts - 1, updated_at = now() WHERE id = $1",
                d.id,
            )
        elif d.outcome == "retry":
            await self._retry_later(conn, d)
        elif d.outcome == "bounced":
            await _set_state(conn, d, "bounced", d.detail)
            bounce = Bounce(d.address, "hard-bounce", d.status_code, d.member_id, d.campaign_id)
            facts.extend(await suppress(conn, bounce, self._keyring))

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


def _sent_fact(d: Delivery, now: datetime) -> OutboxMessage:
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


def enhanced_status(message: str, code: int) -> str:
    """'5.1.1' from '5.1.1 user unknown', else the class from the reply code."""
    first = message.split(" ", 1)[0]
    return first if first.count(".") == 2 and first[0] in "245" else f"{str(code)[0]}.0.0"


async def _set_state(conn: Conn, d: Delivery, state: str, reason: str) -> None:
    await conn.execute(
        f"UPDATE {d.table} SET state = $2, reason = $3, updated_at = now() WHERE id = $1", d.id, state, reason
    )


@dataclass(frozen=True)
class Bounce:
    address: str
    reason: str  # hard-bounce, soft-bounces
    status: str  # enhanced status code, e.g. 5.1.1
    member_id: str | None
    campaign_id: str | None


async def suppress(conn: Conn, bounce: Bounce, keyring: KeyRing) -> list[OutboxMessage]:
    """Stop all mail to the address, and say so on `email-bounced` (sealed with her key).

    An address that belongs to no member (a sign-up's verification mail) is
    suppressed here only: there is no one to publish it about, and an address
    must never become a Kafka key. A member erased meanwhile has no key: no event.
    """
    await conn.execute(
        "INSERT INTO suppressions (address, reason, status) VALUES (lower($1), $2, $3) ON CONFLICT DO NOTHING",
        bounce.address,
        bounce.reason,
        bounce.status,
    )
    member_id = bounce.member_id
    seal = (await keyring.current({member_id})).get(member_id) if member_id else None
    if member_id is None or seal is None:
        return []
    data = EmailBounced(
        member_id=member_id,
        campaign_id=bounce.campaign_id,
        address=bounce.address,
        kind="hard" if bounce.reason == "hard-bounce" else "soft",
        status=bounce.status,
        suppressed=True,
        bounced_at=datetime.now(UTC),
    )
    event = EmailBouncedV1.create(subject=member_id, data=data, source=SOURCE)
    return [OutboxMessage(topic="email-bounced", key=member_id, event=event, seal=seal)]
