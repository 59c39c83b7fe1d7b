"""One skeleton for every service's FastAPI app: the lifespan, body limits, the
refusal of U+0000 in parameters, `Cache-Control: no-store` by default and the
operations routes, built by `service_app`.

A service's `create_app(settings)` builds its runtime and collaborators, then
hands them here. What must run beside the consumers (a sender, a listener, a
periodic job) is a `running` part: an async context manager entered after the
runtime started and left before it stops. What the consumers themselves use (a
render worker) is a `resource`: entered before the runtime starts and left after
it stopped, so that no consumer ever finds it closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

import swagger_ui_bundle  # type: ignore[import-untyped]
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from alumni_kit.body_limit import limit_bodies
from alumni_kit.http import ops_router
from alumni_kit.http_metrics import HttpMetrics
from alumni_kit.no_store import no_store_by_default
from alumni_kit.runtime import ServiceRuntime
from alumni_kit.text_input import refuse_nul_parameters

Part = Callable[[], AbstractAsyncContextManager[object]]


def service_app(
    runtime: ServiceRuntime,
    title: str,
    routers: Iterable[APIRouter],
    *,
    body_limits: dict[str, int] | None = None,
    resources: Sequence[Part] = (),
    running: Sequence[Part] = (),
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as outer:
            for resource in resources:
                await outer.enter_async_context(resource())
            await runtime.start()
            outer.push_async_callback(runtime.stop)
            async with AsyncExitStack() as inner:
                for part in running:
                    await inner.enter_async_context(part())
                yield

    # FastAPI's own /docs and /redoc load their scripts from a public CDN: ours are local.
    app = FastAPI(title=title, lifespan=lifespan, docs_url=None, redoc_url=None)
    limit_bodies(app, runtime.settings.http_max_body_bytes, body_limits or {})
    refuse_nul_parameters(app)  # PostgreSQL text cannot hold U+0000: a 422, not a 500
    no_store_by_default(app)  # personal data must not be kept by any cache
    app.state.runtime = runtime
    app.include_router(ops_router(runtime.metrics.registry, runtime.readiness))
    if runtime.settings.api_docs_enabled:
        _api_docs(app, title)
    for router in routers:
        app.include_router(router)
    # Outermost, so refusals by the other middleware are counted too.
    app.add_middleware(HttpMetrics, metrics=runtime.metrics)
    return app


DOCS_ASSETS = "/docs/assets"


def _api_docs(app: FastAPI, title: str) -> None:
    """Swagger UI at /docs with its scripts and styles from the `swagger-ui-bundle` package."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{title} - API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )
