"""The forecast as a periodic job: a `running` part of the service (alumni_kit.app).

It runs once when the service starts and then every `EVENTS_FORECAST_SECONDS` (an hour by
default). Each run replaces the day's forecast of every due event, so there is one forecast
per event and day, the day's last. Replicas may all run it: a forecast is an upsert of the
same figures, and each replica's gauges show the same counts (alerts take the max).
"""

from __future__ import annotations

from datetime import UTC, datetime

from alumni_kit.app import Part
from alumni_kit.periodic import periodic
from alumni_kit.runtime import ServiceRuntime
from events.forecast.flows import Forecasting, forecast_all


def forecaster(runtime: ServiceRuntime, forecasting: Forecasting, every_seconds: float) -> Part:
    async def one_round() -> None:
        async with runtime.pool.acquire() as conn:
            await forecast_all(conn, datetime.now(UTC), forecasting)

    return periodic("turnout forecast", every_seconds, one_round)
