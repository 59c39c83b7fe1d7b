"""The membership service: `create_app(settings)` builds it, nothing connects at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from alumni_kit.auth import TokenSigner, parse_keys
from alumni_kit.consumer import BatchHandler
from alumni_kit.http import ops_router, staff_principal
from alumni_kit.runtime import ServiceRuntime, Subscription
from membership.domain import EligibilityPolicy
from membership.handlers import MembershipMetrics, make_graduated_handler
from membership.http import members_router
from membership.settings import MembershipSettings
from usn_schemas.graduated import GraduatedV1
from usn_schemas.member import MemberRegisteredV1, MemberUpdatedV1
from usn_schemas.registry import TOPIC_CONTRACTS

MIGRATIONS = Path(__file__).parent / "migrations"


def create_runtime(settings: MembershipSettings) -> ServiceRuntime:
    """The broker, its subscriptions and publications (also the AsyncAPI source)."""
    runtime = ServiceRuntime("membership", settings, MIGRATIONS)
    handler: BatchHandler = make_graduated_handler(
        EligibilityPolicy(settings.eligible_degree_levels), MembershipMetrics(runtime.metrics.registry)
    )
    runtime.subscribe(
        Subscription("graduated", settings.group_id, TOPIC_CONTRACTS["graduated"], handler),
        GraduatedV1,
        "Graduations from FS and other USN systems (pinned contract v1); key = student number.",
    )
    runtime.publishes("member-registered", MemberRegisteredV1, "A person qualified as a member for the first time.")
    runtime.publishes("member-updated", MemberUpdatedV1, "A member's facts changed, e.g. a second degree.")
    return runtime


def create_app(settings: MembershipSettings | None = None) -> FastAPI:
    settings = settings or MembershipSettings()
    runtime = create_runtime(settings)
    signer = TokenSigner(parse_keys(settings.signing_keys.get_secret_value()))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="USN Alumni membership", lifespan=lifespan)
    app.state.runtime = runtime
    app.include_router(ops_router(runtime.metrics.registry, runtime.readiness))
    app.include_router(members_router(runtime, staff_principal(signer)))
    return app
