"""The mail stage's place in the service: its consumers of the service's own facts and
the reminder job (a `running` part of alumni_kit.app.service_app)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from alumni_kit.app import Part
from alumni_kit.periodic import periodic
from alumni_kit.runtime import ServiceRuntime, Subscription
from events.checkin.codes import keyring_from
from events.mail import repository as queries
from events.mail.handlers import MailStage
from events.settings import EventsSettings
from events.web.links import Links
from usn_schemas.events import (
    EventCancelledV1,
    EventOfferMadeV1,
    EventRegisteredV1,
    EventRegistrationCancelledV1,
    EventUpdatedV1,
)
from usn_schemas.mail import TransactionalMailRequestedV1
from usn_schemas.registry import TOPIC_CONTRACTS

log = logging.getLogger(__name__)


def stage_of(runtime: ServiceRuntime, settings: EventsSettings, links: Links) -> MailStage:
    checkin = keyring_from(settings.checkin_keys.get_secret_value())
    return MailStage(runtime.keyring, links, settings.calendar_organizer, checkin)


def subscribe(runtime: ServiceRuntime, settings: EventsSettings, links: Links) -> None:
    """The consumers that turn facts into mail (group `<group>.<topic>` as every consumer)."""
    stage = stage_of(runtime, settings, links)
    for topic, schema, handler, text in (
        ("event-registered", EventRegisteredV1, stage.on_registered, "The confirmation, with the calendar entry."),
        ("event-offer-made", EventOfferMadeV1, stage.on_offer_made, "The offer, with the page to answer it."),
        ("event-updated", EventUpdatedV1, stage.on_updated, "Everyone in the event told; calendar entries replaced."),
        ("event-cancelled", EventCancelledV1, stage.on_cancelled, "Every registrant told; calendar entries cancelled."),
        (
            "event-registration-cancelled",
            EventRegistrationCancelledV1,
            stage.on_registration_cancelled,
            "She cancelled: told, her calendar entry cancelled.",
        ),
    ):
        runtime.subscribe(Subscription(topic, settings.group_id, TOPIC_CONTRACTS[topic], handler), schema,
                          f"The service's own fact, read back to mail it: {text}")  # fmt: skip
    runtime.publishes(
        "transactional-mail-requested",
        TransactionalMailRequestedV1,
        "Confirmations (with iCalendar), offers, reminders, updates and cancellations, by member id and sealed;"
        " the turnout alert to the organiser's role address (to_role, nothing personal, unsealed).",
    )


def reminders(runtime: ServiceRuntime, settings: EventsSettings, links: Links) -> Part:
    """The reminder job: every `EVENTS_REMINDER_SWEEP_SECONDS`, events starting within
    `EVENTS_REMINDER_HOURS` get their one reminder (reminders_sent makes it once, whichever
    replica finds it first)."""
    stage = stage_of(runtime, settings, links)

    async def once() -> None:
        now = datetime.now(UTC)
        async with runtime.pool.acquire() as conn:
            due = await queries.due_reminders(conn, now, settings.reminder_hours)
        for event_id in due:
            async with runtime.pool.acquire() as conn, conn.transaction():
                sent = await stage.remind(conn, event_id, now)
            log.info("event %s: %d reminders requested", event_id, sent)

    return periodic("reminder round", settings.reminder_sweep_seconds, once)
