"""The events service: `create_app(settings)` builds it, nothing connects at import."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI

from alumni_kit.access_export import export_router
from alumni_kit.app import service_app
from alumni_kit.auth import TokenSigner, parse_keys
from alumni_kit.http import service_caller, staff_principal
from alumni_kit.periodic import periodic
from alumni_kit.runtime import ServiceRuntime, Subscription
from events import registrations, repository
from events.calendar.routes import calendar_router
from events.checkin import routes as checkin
from events.checkin.codes import keyring_from
from events.facts import TOPICS
from events.forecast.flows import Forecasting, ForecastMetrics
from events.forecast.job import forecaster
from events.forecast.routes import forecast_router
from events.handlers import on_member_erased
from events.invitations import campaign as invitations
from events.mail import wiring as mail
from events.metrics import EventsMetrics
from events.routes import member_router, staff_router
from events.settings import EventsSettings
from events.web.links import Links
from events.web.routes import page_router
from usn_schemas.member import MemberErasedV1
from usn_schemas.registry import TOPIC_CONTRACTS

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)

_PUBLISHED = {
    "event-published": "An event opened for registration (the event as published).",
    "event-updated": "A published event changed (the event as it now stands).",
    "event-cancelled": "An event was cancelled; nobody can register any more.",
    "event-registered": "A member has a seat: registered directly or by accepting an offer.",
    "event-waitlisted": "A member joined the waiting list (with her position).",
    "event-offer-made": "A freed seat is held for the first on the waiting list until the offer expires.",
    "event-offer-expired": "An offer ran out of time; the seat goes to the next in line.",
    "event-registration-cancelled": "A member left: her seat, her place on the list, or her offer (or was erased).",
    "event-attended": "A member was checked in at the event.",
}


def create_runtime(settings: EventsSettings, links: Links | None = None) -> ServiceRuntime:
    """The broker, its subscriptions and publications (also the AsyncAPI source)."""
    runtime = ServiceRuntime("events", settings, MIGRATIONS)
    links = links or Links(TokenSigner(parse_keys(settings.signing_keys.get_secret_value())), settings.public_base_url)
    runtime.subscribe(
        Subscription("member-erased", settings.group_id, TOPIC_CONTRACTS["member-erased"], on_member_erased),
        MemberErasedV1,
        "Erasure (GDPR art. 17): her registrations lose every link to her; the counts stay.",
    )
    for topic, text in _PUBLISHED.items():
        runtime.publishes(topic, TOPICS[topic], text)
    # Invitations and mail read the service's own facts back.
    invitations.subscribe(runtime, settings.group_id, links)
    mail.subscribe(runtime, settings, links)
    return runtime


def create_app(settings: EventsSettings | None = None) -> FastAPI:
    settings = settings or EventsSettings()
    signer = TokenSigner(parse_keys(settings.signing_keys.get_secret_value()))
    links = Links(signer, settings.public_base_url)
    runtime = create_runtime(settings, links)
    metrics = EventsMetrics(runtime.metrics.registry)
    forecasting = Forecasting(ForecastMetrics(runtime.metrics.registry), dict(settings.organiser_contacts.items()))

    async def sweep_once() -> None:
        now = datetime.now(UTC)
        async with runtime.pool.acquire() as conn:
            due = await repository.events_with_expired_offers(conn, now)
        for event_id in due:  # one transaction per event: one event's lock never holds up another's
            async with runtime.pool.acquire() as conn, conn.transaction():
                metrics.offers_expired.inc(await registrations.expire_offers(conn, event_id, now))

    offer_sweeper = periodic(
        "offer sweep", settings.offer_sweep_seconds, sweep_once, on_failure=metrics.sweep_failures.inc
    )

    keyring = keyring_from(settings.checkin_keys.get_secret_value())
    staff = staff_principal(signer)
    routers = [
        calendar_router(runtime, settings.calendar_organizer),  # before /events/{event_id}
        page_router(runtime, signer, links),
        staff_router(runtime, staff),
        forecast_router(runtime, staff, forecasting),
        checkin.staff_router(runtime, staff, keyring),
        checkin.public_router(runtime, signer, keyring),
        member_router(runtime, signer, metrics),
        export_router(runtime, service_caller(signer), repository.EXPORT_QUERIES),
    ]
    return service_app(
        runtime,
        "USN Alumni events",
        routers,
        running=[
            offer_sweeper,
            forecaster(runtime, forecasting, settings.forecast_seconds),
            mail.reminders(runtime, settings, links),
        ],
    )
