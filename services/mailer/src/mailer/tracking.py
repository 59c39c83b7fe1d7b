"""Signed click-redirect and open-pixel links, and recording what they tell (routes: tracking_routes.py).

The token names the delivery (campaign, member) and, for clicks, the URL, all
signed: a redirect can only lead where the newsletter's author linked (no open
redirect), and nobody can fabricate engagement for someone else.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from alumni_kit.auth import TokenSigner
from alumni_kit.db import Conn
from alumni_kit.outbox import OutboxMessage, add_to_outbox
from mailer import SOURCE
from usn_schemas.campaign import EmailClickedV1, EmailEngagement, EmailOpenedV1

log = logging.getLogger(__name__)
TRACKING_DAYS = 400


class TrackingLinks:
    def __init__(self, signer: TokenSigner, base_url: str) -> None:
        self._signer, self._base = signer, base_url.rstrip("/")

    def click(self, campaign_id: str, member_id: str, url: str) -> str:
        token = self._signer.sign("click", {"c": campaign_id, "m": member_id, "u": url}, TRACKING_DAYS * 86400)
        return f"{self._base}/t/c/{token}"

    def open_pixel(self, campaign_id: str, member_id: str) -> str:
        token = self._signer.sign("open", {"c": campaign_id, "m": member_id}, TRACKING_DAYS * 86400)
        return f"{self._base}/t/o/{token}"

    def verify(self, token: str, kind: str) -> dict[str, Any]:
        return self._signer.verify(token, kind)


async def record_engagement(conn: Conn, kind: str, claims: dict[str, Any], url: str | None) -> None:
    """Publish the open or click a verified link names (through the outbox), unless she was erased."""
    contract = EmailClickedV1 if kind == "click" else EmailOpenedV1
    data = EmailEngagement(campaign_id=claims["c"], member_id=claims["m"], at=datetime.now(UTC), url=url)
    event = contract.create(subject=claims["m"], data=data, source=SOURCE)
    topic = "email-clicked" if kind == "click" else "email-opened"
    if await conn.fetchval("SELECT 1 FROM erased_members WHERE member_id = $1", claims["m"]):
        return  # erased: her old mails are not tracked any more
    await add_to_outbox(conn, [OutboxMessage(topic=topic, key=claims["m"], event=event)])
