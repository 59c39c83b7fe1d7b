"""The tracking endpoints: /t/c/{token} redirects a click, /t/o/{token} serves the open pixel."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from alumni_kit.auth import InvalidTokenError
from alumni_kit.http import answers_in
from alumni_kit.runtime import ServiceRuntime
from mailer.tracking import TrackingLinks, record_engagement

# The smallest transparent GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def tracking_router(runtime: ServiceRuntime, links: TrackingLinks) -> APIRouter:
    router = APIRouter(prefix="/t", tags=["tracking"])

    async def record(kind: str, claims: dict[str, Any], url: str | None) -> None:
        async with runtime.pool.acquire() as conn, conn.transaction():
            await record_engagement(conn, kind, claims, url)

    @router.get(
        "/c/{token}",
        status_code=302,  # to the link's address
        response_class=RedirectResponse,
        responses=answers_in("text/plain", {404: "A forged or altered link."}),
    )
    async def click(token: str) -> Response:
        try:
            claims = links.verify(token, "click")
        except InvalidTokenError as exc:
            return PlainTextResponse(f"this link is not valid ({exc})", status_code=404)
        url = str(claims["u"])
        await record("click", claims, url)
        return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})

    # Always the pixel, also for a bad token: a broken image must not show in the mail.
    @router.get("/o/{token}", responses=answers_in("image/gif", {200: "A 1x1 transparent GIF."}))
    async def pixel(token: str) -> Response:
        try:
            claims = links.verify(token, "open")
        except InvalidTokenError:
            return Response(PIXEL, media_type="image/gif")  # a broken pixel must not show in the mail
        await record("open", claims, None)
        return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})

    return router
