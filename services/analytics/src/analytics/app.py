"""The analytics service: `create_app(settings)` builds it, nothing connects at import."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
from fastapi import FastAPI

from alumni_kit.app import service_app
from alumni_kit.db import apply_migrations
from alumni_kit.runtime import ServiceRuntime, Subscription
from analytics.generations import MIGRATIONS, ensure_live
from analytics.handlers import live_projector
from analytics.read.wiring import read_routers
from analytics.settings import AnalyticsSettings
from analytics.topics import CONSUMED
from usn_schemas.registry import TOPIC_CONTRACTS

log = logging.getLogger(__name__)


def create_runtime(settings: AnalyticsSettings) -> ServiceRuntime:
    """The broker and its subscriptions: every topic (also the AsyncAPI source)."""
    runtime = ServiceRuntime("analytics", settings, MIGRATIONS)
    if "development-only" in settings.erasure_pepper.get_secret_value():
        log.warning("ANALYTICS_ERASURE_PEPPER not set: a public development value keys erased members")
    handler = live_projector(settings.weights(), settings.pepper())
    for topic, text in CONSUMED.items():
        contracts = TOPIC_CONTRACTS[topic]
        runtime.subscribe(
            Subscription(topic, settings.group_id, contracts, handler, skip_unknown_types=True),
            next(iter(contracts.values())),
            text,
        )
    return runtime


async def prepare_database(runtime: ServiceRuntime) -> str:
    """Migrations and a live generation, before any consumer runs; returns the live one's name."""
    conn = await asyncpg.connect(runtime.settings.database_url)
    try:
        await apply_migrations(conn, runtime.migrations)
        return await ensure_live(conn)
    finally:
        await conn.close()


def create_app(settings: AnalyticsSettings | None = None) -> FastAPI:
    settings = settings or AnalyticsSettings()
    runtime = create_runtime(settings)

    @contextlib.asynccontextmanager
    async def live_generation() -> AsyncIterator[None]:
        # A resource: entered before the runtime starts its consumers, which need the live one.
        await prepare_database(runtime)
        yield

    routers = read_routers(runtime, settings, settings.weights())  # the read side: API, CSV, dashboard
    return service_app(runtime, "USN Alumni analytics", routers, resources=[live_generation])
