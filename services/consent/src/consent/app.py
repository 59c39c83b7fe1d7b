"""The consent service: `create_app(settings)` builds it, nothing connects at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from alumni_kit.access_export import export_router
from alumni_kit.app import service_app
from alumni_kit.auth import TokenSigner, parse_keys
from alumni_kit.body_limit import MIB
from alumni_kit.http import service_caller, staff_principal
from alumni_kit.runtime import ServiceRuntime, Subscription
from consent import ledger
from consent.access import EXPORT_QUERIES
from consent.handlers import make_member_handler, on_member_erased
from consent.links import Links
from consent.metrics import ConsentMetrics
from consent.notices import NoticeBook
from consent.page_routes import Web, web_router
from consent.settings import ConsentSettings
from consent.staff_routes import staff_router
from usn_schemas.consent import ConsentGivenV1, ConsentWithdrawnV1
from usn_schemas.mail import TransactionalMailRequestedV1
from usn_schemas.member import MemberErasedV1, MemberRegisteredV1, MemberUpdatedV1
from usn_schemas.registry import TOPIC_CONTRACTS

MIGRATIONS = Path(__file__).parent / "migrations"
# An import of IMPORT_MAX rows (consent/staff_routes.py) is ~2 MB of JSON: room for that, not for more.
IMPORT_BODY_BYTES = 4 * MIB


def create_runtime(settings: ConsentSettings, links: Links) -> ServiceRuntime:
    """The broker, its subscriptions and publications (also the AsyncAPI source)."""
    return _build_runtime(settings, links)[0]


def _build_runtime(settings: ConsentSettings, links: Links) -> tuple[ServiceRuntime, ConsentMetrics]:
    runtime = ServiceRuntime("consent", settings, MIGRATIONS)
    metrics = ConsentMetrics(runtime.metrics.registry)
    on_member = make_member_handler(
        links, settings.invitations_enabled, settings.invitation_link_days, metrics, runtime.keyring
    )
    for topic, schema, text in (
        ("member-registered", MemberRegisteredV1, "New members: kept as consent's member copy; invited once."),
        ("member-updated", MemberUpdatedV1, "Changed members: a new address must be confirmed again."),
    ):
        runtime.subscribe(Subscription(topic, settings.group_id, TOPIC_CONTRACTS[topic], on_member), schema, text)
    runtime.subscribe(
        Subscription("member-erased", settings.group_id, TOPIC_CONTRACTS["member-erased"], on_member_erased),
        MemberErasedV1,
        "Erasure (GDPR art. 17): the member copy and state go; the ledger keeps anonymous proof.",
    )
    runtime.publishes("consent-given", ConsentGivenV1, "A member gave consent for a channel and purpose.")
    runtime.publishes("consent-withdrawn", ConsentWithdrawnV1, "A member withdrew consent for a channel and purpose.")
    runtime.publishes(
        "transactional-mail-requested",
        TransactionalMailRequestedV1,
        "Invitations to the preference centre and double opt-in confirmations, for the mailer.",
    )
    return runtime, metrics


def create_app(settings: ConsentSettings | None = None) -> FastAPI:
    settings = settings or ConsentSettings()
    signer = TokenSigner(parse_keys(settings.signing_keys.get_secret_value()))
    links = Links(signer, settings.public_base_url)
    notices = NoticeBook(settings.purposes, settings.notice_version, settings.notices_file)
    runtime, metrics = _build_runtime(settings, links)

    @asynccontextmanager
    async def notices_stored() -> AsyncIterator[None]:
        async with runtime.pool.acquire() as conn:
            await ledger.store_notices(conn, notices.all())
        yield

    routers = [
        staff_router(runtime, staff_principal(signer), notices, metrics),
        web_router(Web(runtime, links, notices, settings, metrics)),
        export_router(runtime, service_caller(signer), EXPORT_QUERIES),
    ]
    return service_app(
        runtime,
        "USN Alumni consent",
        routers,
        body_limits={"/consent/import": IMPORT_BODY_BYTES},
        running=[notices_stored],
    )
