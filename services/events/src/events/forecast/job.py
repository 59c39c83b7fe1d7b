"""The forecast as a periodic job: a `running` part of the service (alumni_kit.app).

It runs once when the service starts and then every `EVENTS_FORECAST_SECONDS` (an hour by
default). Each run replaces the day's forecast of every due event, so there is one forecast
per event and day, the day's last. Replicas may all run it: a forecast is an upsert of the
same figures, and each replica's gauges show the same counts (alerts take the max).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from alumni_kit.app import Part
from alumni_kit.logs import where_it_failed
from alumni_kit.runtime import ServiceRuntime
from events.forecast.flows import ForecastMetrics, forecast_all

log = logging.getLogger(__name__)


def forecaster(runtime: ServiceRuntime, metrics: ForecastMetrics, every_seconds: float) -> Part:
    async def forever() -> None:
        while True:
            try:
                async with runtime.pool.acquire() as conn:
                    await forecast_all(conn, datetime.now(UTC), metrics)
            except Exception as exc:  # a database outage must not end the job; the next round retries
                log.warning("turnout forecast failed (%s); retrying next round", where_it_failed(exc))
            await asyncio.sleep(every_seconds)

    @contextlib.asynccontextmanager
    async def running() -> AsyncIterator[None]:
        task = asyncio.create_task(forever(), name="events-forecast")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return running
