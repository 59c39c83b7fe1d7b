"""The mailer: `create_app(settings)` builds it, nothing connects at import."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.headerregistry import Address
from pathlib import Path

from fastapi import FastAPI

from alumni_kit.access_export import export_router
from alumni_kit.app import service_app
from alumni_kit.auth import TokenSigner, parse_keys
from alumni_kit.body_limit import MIB
from alumni_kit.consent_view import CONSENT_VIEW_MIGRATIONS, consent_view_handler
from alumni_kit.http import service_caller, staff_principal
from alumni_kit.runtime import ServiceRuntime, Subscription
from mailer.access import EXPORT_QUERIES
from mailer.bounce_ingest import BounceIngest
from mailer.campaigns import make_campaign_handler
from mailer.members import on_member, on_member_erased
from mailer.metrics import MailerMetrics
from mailer.rendering import Renderer, RenderLimits
from mailer.retention import purge_periodically
from mailer.sender import Sender
from mailer.settings import MailerSettings
from mailer.staff_routes import staff_router
from mailer.tracking import TrackingLinks
from mailer.tracking_routes import tracking_router
from mailer.transactional import on_transactional
from usn_schemas.campaign import (
    CampaignRequestedV1,
    CampaignStatusV1,
    EmailBouncedV1,
    EmailClickedV1,
    EmailOpenedV1,
    NewsletterSentV1,
)
from usn_schemas.consent import ConsentGivenV1, ConsentWithdrawnV1
from usn_schemas.mail import TransactionalMailRequestedV1
from usn_schemas.member import MemberErasedV1, MemberRegisteredV1, MemberUpdatedV1
from usn_schemas.registry import TOPIC_CONTRACTS

MIGRATIONS = Path(__file__).parent / "migrations"
# A campaign must fit the `campaigns` topic (1 MiB a record, alumni_kit/topics.py); a request
# somewhat over that still gets its precise refusal from the staff API rather than a bare 413.
CAMPAIGN_BODY_BYTES = 4 * MIB


def render_limits(settings: MailerSettings) -> RenderLimits:
    return RenderLimits(settings.render_timeout_seconds, settings.render_max_bytes, settings.render_memory_mib)


def from_address(settings: MailerSettings) -> Address:
    return Address(display_name=settings.from_name, addr_spec=settings.from_address)


def create_runtime(settings: MailerSettings, intake: Renderer | None = None) -> ServiceRuntime:
    """The broker, its subscriptions and publications (also the AsyncAPI source).

    `intake` checks arriving campaigns (a worker starts only when one arrives)."""
    intake = intake or Renderer(render_limits(settings), from_address(settings), "intake render")
    runtime = ServiceRuntime("mailer", settings, MIGRATIONS, shared=CONSENT_VIEW_MIGRATIONS)
    group = settings.group_id
    consumed = [
        ("campaigns", make_campaign_handler(settings.purposes, intake), CampaignRequestedV1,
         "Campaign requests (pinned contract v1); a repeated campaign id has no effect; one whose template"
         " cannot be rendered is failed (campaign-status)."),
        ("transactional-mail-requested", on_transactional, TransactionalMailRequestedV1,
         "Mail the other services need sent: opt-in confirmations, magic links."),
        ("member-registered", on_member, MemberRegisteredV1, "The mailer's copy of members (audiences, names)."),
        ("member-updated", on_member, MemberUpdatedV1, "Changed members."),
        ("member-erased", on_member_erased, MemberErasedV1, "Erasure: her copy, consent view and queued mail go."),
        ("consent-given", consent_view_handler(), ConsentGivenV1, "Consent, checked for every recipient at send time."),
        ("consent-withdrawn", consent_view_handler(), ConsentWithdrawnV1, "Withdrawals: no send after they arrive."),
    ]  # fmt: skip
    for topic, handler, schema, text in consumed:
        runtime.subscribe(Subscription(topic, group, TOPIC_CONTRACTS[topic], handler), schema, text)
    runtime.publishes("campaigns", CampaignRequestedV1, "Campaigns created through the staff API.")
    runtime.publishes("newsletter-sent", NewsletterSentV1, "One per recipient: message id and the consent relied on.")
    runtime.publishes("email-bounced", EmailBouncedV1, "Hard bounces (and soft ones past the threshold): suppressed.")
    runtime.publishes("email-opened", EmailOpenedV1, "Open pixel fetched (campaigns that track opens).")
    runtime.publishes("email-clicked", EmailClickedV1, "Tracked link followed.")
    runtime.publishes(
        "campaign-status", CampaignStatusV1, "Scheduled, sending, paused, done, cancelled or failed, with counts."
    )
    return runtime


def create_app(settings: MailerSettings | None = None) -> FastAPI:
    settings = settings or MailerSettings()
    signer = TokenSigner(parse_keys(settings.signing_keys.get_secret_value()))
    # Two render workers: checking requests (staff API, topic) never waits on sending, nor the reverse.
    intake = Renderer(render_limits(settings), from_address(settings), "intake render")
    sending_renderer = Renderer(render_limits(settings), from_address(settings), "sender render")
    runtime = create_runtime(settings, intake)
    metrics = MailerMetrics(runtime.metrics.registry)
    tracking = TrackingLinks(signer, settings.public_base_url)
    sender = Sender(runtime, settings, signer, tracking, metrics, sending_renderer)
    bounces = BounceIngest(runtime, settings, signer.derived_keys("verp")[0], metrics)

    @asynccontextmanager
    async def renderers() -> AsyncIterator[None]:
        try:
            yield
        finally:  # after the consumers stopped: the campaigns consumer renders with `intake`
            await intake.close()
            await sending_renderer.close()

    @asynccontextmanager
    async def bounce_listener() -> AsyncIterator[None]:
        await bounces.start()
        try:
            yield
        finally:
            await bounces.stop()

    @asynccontextmanager
    async def sending() -> AsyncIterator[None]:
        task = asyncio.create_task(sender.run(), name="mailer-sender")
        try:
            yield
        finally:
            sender.stop()
            await task

    @asynccontextmanager
    async def purging() -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(
            purge_periodically(runtime.pool, settings.transactional_keep_days, stop), name="mailer-purge"
        )
        try:
            yield
        finally:
            stop.set()
            await task

    routers = [
        tracking_router(runtime, tracking),
        export_router(runtime, service_caller(signer), EXPORT_QUERIES),
        staff_router(runtime, staff_principal(signer), settings.purposes, intake, settings.message_id_domain),
    ]
    return service_app(
        runtime,
        "USN Alumni mailer",
        routers,
        body_limits={"/campaigns": CAMPAIGN_BODY_BYTES},
        resources=[renderers],
        running=[bounce_listener, sending, purging],
    )
