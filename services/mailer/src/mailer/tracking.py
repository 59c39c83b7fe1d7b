"""Signed click-redirect and open-pixel links, and the endpoints that record them.

The token names the delivery (campaign, member) and, for clicks, the URL, all
signed: a redirect can only lead where the newsletter's author linked (no open
redirect), and nobody can fabricate engagement for someone else.
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from alumni_kit.auth import InvalidTokenError, TokenSigner
from alumni_kit.outbox import OutboxMessage, add_to_outbox
from alumni_kit.runtime import ServiceRuntime
from mailer import SOURCE
from usn_schemas.campaign import EmailClickedV1, EmailEngagement, EmailOpenedV1

log = logging.getLogger(__name__)
TRACKING_DAYS = 400
# The smallest transparent GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


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


def tracking_router(runtime: ServiceRuntime, links: TrackingLinks) -> APIRouter:
    router = APIRouter(prefix="/t", tags=["tracking"])

    async def record(kind: str, claims: dict[str, Any], url: str | None) -> None:
        contract = EmailClickedV1 if kind == "click" else EmailOpenedV1
        data = EmailEngagement(campaign_id=claims["c"], member_id=claims["m"], at=datetime.now(UTC), url=url)
        event = contract.create(subject=claims["m"], data=data, source=SOURCE)
        topic = "email-clicked" if kind == "click" else "email-opened"
        async with runtime.pool.acquire() as conn, conn.transaction():
            if await conn.fetchval("SELECT 1 FROM erased_members WHERE member_id = $1", claims["m"]):
                return  # erased: her old mails are not tracked any more
            await add_to_outbox(conn, [OutboxMessage(topic=topic, key=claims["m"], event=event)])

    @router.get("/c/{token}")
    async def click(token: str) -> Response:
        try:
            claims = links.verify(token, "click")
        except InvalidTokenError as exc:
            return PlainTextResponse(f"this link is not valid ({exc})", status_code=404)
        url = str(claims["u"])
        await record("click", claims, url)
        return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})

    @router.get("/o/{token}")
    async def pixel(token: str) -> Response:
        try:
            claims = links.verify(token, "open")
        except InvalidTokenError:
            return Response(PIXEL, media_type="image/gif")  # a broken pixel must not show in the mail
        await record("open", claims, None)
        return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})

    return router
