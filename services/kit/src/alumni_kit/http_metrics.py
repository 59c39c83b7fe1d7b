"""HTTP rate, errors and duration per route template, for every service's app.

The route label is the template a request matched (`/members/{member_id}`),
never the raw path: a path holds ids and tokens, and every distinct value would
be a new series. A request no route matches is counted under one fixed label.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alumni_kit.metrics import HTTP_METHODS, UNMATCHED_ROUTE, KitMetrics


def route_template(scope: Scope) -> str:
    """The template of the route that handled `scope` (after the app ran), or UNMATCHED_ROUTE.

    The router leaves the matched endpoint and its path parameters in the scope; each
    path segment that is a parameter's value is put back as `{name}`. (FastAPI 0.163
    matches included routers lazily, so the app's route list alone does not say which.)
    """
    if "endpoint" not in scope:
        return UNMATCHED_ROUTE
    given = scope.get("path_params") or {}
    path: str = scope.get("path", "")
    mounted_at = str(scope.get("root_path", "")).removeprefix(str(scope.get("app_root_path", "")))
    if "app_root_path" in scope and mounted_at:  # a mount (static assets): one series for all it serves
        return mounted_at + "/{path}"
    params = {str(v): k for k, v in given.items()}
    segments = ["{" + params[seg] + "}" if seg in params else seg for seg in path.split("/")]
    if len(set(given) - {s[1:-1] for s in segments if s.startswith("{")}) > 0:
        # A parameter that is only part of a segment: its value must not become a label.
        return UNMATCHED_ROUTE
    return "/".join(segments)


class HttpMetrics:
    """Pure ASGI middleware (no body buffering): counts each answered request once."""

    def __init__(self, app: ASGIApp, metrics: KitMetrics) -> None:
        self._app, self._metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in HTTP_METHODS else "other"
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
            route = route_template(scope)
            self._metrics.http_requests.labels(method, route, str(status)).inc()
            self._metrics.http_duration.labels(method, route).observe(time.perf_counter() - started)
