"""HTTP rate, errors and duration per route template, for every service's app.

The route label is the template a request matched (`/members/{member_id}`),
never the raw path: a path holds ids and tokens, and every distinct value would
be a new series. A request no route matches is counted under one fixed label.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alumni_kit.metrics import HTTP_METHODS, UNMATCHED_ROUTE, KitMetrics


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The template of the route `scope` goes to (also for a 405 on a known path), or UNMATCHED_ROUTE."""
    partial: str | None = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.NONE:
            continue
        path = _template_of(route)
        if match is Match.FULL:
            return path
        partial = partial or path  # the path matched, the method did not
    return partial or UNMATCHED_ROUTE


def _template_of(route: BaseRoute) -> str:
    if isinstance(route, Mount):  # static assets: one series for the whole mount
        return f"{route.path}/{{path}}"
    path: Any = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class HttpMetrics:
    """Pure ASGI middleware (no body buffering): counts each answered request once."""

    def __init__(self, app: ASGIApp, metrics: KitMetrics, routes: Sequence[BaseRoute]) -> None:
        self._app, self._metrics, self._routes = app, metrics, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in HTTP_METHODS else "other"
        route = route_template(self._routes, scope)
        status = 500  # what the server answers when the app raises before responding
        started = time.perf_counter()

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, counting_send)
        finally:
            self._metrics.http_requests.labels(method, route, str(status)).inc()
            self._metrics.http_duration.labels(method, route).observe(time.perf_counter() - started)
