"""`Cache-Control: no-store` on every answer that does not say otherwise.

The services' answers are personal (a member list, an export, her preference
centre) or change from one request to the next (readiness, metrics): no proxy or
browser cache may keep them. A route that may be cached sets its own header.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

NO_STORE = (b"cache-control", b"no-store")


class NoStore:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    message = {**message, "headers": [*headers, NO_STORE]}
            await send(message)

        await self.app(scope, receive, send_no_store)


def no_store_by_default(app: FastAPI) -> None:
    app.add_middleware(NoStore)
