"""Request bodies over a size limit are answered 413 without being read whole.

An ASGI middleware in front of every service's app: a declared `Content-Length`
over the limit is refused before the app runs (nothing of the body is read); a
body without one (chunked) is counted as the app reads it, and the read that
crosses the limit raises a 413, so at most limit + one chunk is ever held.
Routes that need more (a campaign's Markdown, a consent import) get a larger
limit by exact path (the general one if that is larger still).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from fastapi import FastAPI, HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MIB = 1024 * 1024


class BodyTooLargeError(HTTPException):
    """An HTTPException, so FastAPI's body parsing passes it on as the 413 it is."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than this endpoint accepts ({limit} bytes at most)")
        self.limit = limit


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int, routes: Mapping[str, int] | None = None) -> None:
        self.app, self.limit, self.routes = app, limit, dict(routes or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = max(self.routes.get(scope["path"], 0), self.limit)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit)
            return
        reading = _CountingReceive(receive, limit)
        started = False

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, reading, watching_send)
        except BodyTooLargeError:
            # Raised where nothing turned it into a response (e.g. a streaming read outside FastAPI's handlers).
            if not started:
                await _refuse(send, limit)


class _CountingReceive:
    """The app's `receive`, counting body bytes: the read that crosses the limit raises."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self.receive, self.limit, self.seen = receive, limit, 0

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                raise BodyTooLargeError(self.limit)
        return message


def limit_bodies(app: FastAPI, limit: int, routes: Mapping[str, int] | None = None) -> None:
    """Every request to `app` passes the body limit first (`routes`: larger limits by exact path)."""
    app.add_middleware(BodyLimit, limit=limit, routes=routes)


def _content_length(scope: Scope) -> int | None:
    """The declared length; an unreadable one counts as too large (no honest client sends it)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return max(int(value), 0)
            except ValueError:
                return 1 << 62
    return None


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({"detail": BodyTooLargeError(limit).detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
