"""The read side's routers for app.py: the JSON/CSV API and the dashboard, on the write
side's generations (live, and built for an as_of moment: services/analytics/README.md)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request

from alumni_kit.auth import TokenSigner, parse_keys
from alumni_kit.db import Conn
from alumni_kit.http import staff_principal
from alumni_kit.runtime import ServiceRuntime
from analytics.generations import hold_for_reading, live_generation
from analytics.read.repository import EngagementRule
from analytics.read.routes import BusyError, ReadSource, read_router
from analytics.read.scope import ParameterError
from analytics.rebuild import AsOfBusyError, NothingBeforeError, as_of_generation, built_as_of
from analytics.rules import Weights
from analytics.settings import AnalyticsSettings
from analytics.web.routes import dashboard_router, icon_router


def engagement_rule(settings: AnalyticsSettings, weights: Weights) -> EngagementRule:
    return EngagementRule(
        window_days=settings.engagement_window_days,
        threshold=settings.engagement_threshold,
        weights={
            "opened": weights.opened,
            "clicked": weights.clicked,
            "attended": weights.attended,
            "volunteer": weights.volunteer,
        },
    )


def read_routers(runtime: ServiceRuntime, settings: AnalyticsSettings, weights: Weights) -> list[APIRouter]:
    async def as_of_schema(conn: Conn, moment: datetime) -> str:
        built = await built_as_of(conn, moment, weights)  # a moment asked before: no Kafka round trip
        if built is not None:
            return built
        try:
            return await as_of_generation(settings, weights, moment)
        except NothingBeforeError as exc:
            raise ParameterError("as_of", str(exc)) from None
        except AsOfBusyError as exc:
            raise BusyError(str(exc)) from None

    source = ReadSource(
        pool=lambda: runtime.pool,
        live_schema=live_generation,
        hold=hold_for_reading,
        as_of_schema=as_of_schema,
        engagement=engagement_rule(settings, weights),
    )
    signer = TokenSigner(parse_keys(settings.signing_keys.get_secret_value()))

    def secure_cookies(request: Request) -> bool:
        return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"

    return [
        read_router(source, staff_principal(signer)),
        dashboard_router(source, signer, secure_cookies),
        icon_router(),
    ]
