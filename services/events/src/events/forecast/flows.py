"""Forecasting (one event or all of them), the alert figures, and the organiser's decision."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from alumni_kit.db import Conn
from events import lifecycle
from events.forecast import repository, rules
from events.forecast.repository import Due
from events.mail import texts
from events.mail.requests import request_to_role
from events.registrations import RefusedError
from events.repository import Event
from usn_schemas.campaign import Sender

log = logging.getLogger(__name__)
ORGANISERS: tuple[Sender, ...] = ("USN", "HH", "TNM", "HS", "HIU")


class ForecastMetrics:
    """Per organiser (five values; never which event: the figures are in the log and the staff view)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.below = Gauge(
            "events_forecast_below_minimum",
            "Published, undecided events whose latest turnout forecast is below their minimum.",
            ["organiser"],
            registry=registry,
        )
        self.decision_due = Gauge(
            "events_minimum_decision_due",
            "Published events with a minimum whose decision date has come and that nobody has decided yet.",
            ["organiser"],
            registry=registry,
        )

    def show(self, standing: dict[str, tuple[int, int]]) -> None:
        for organiser in ORGANISERS:  # every organiser, so an alert resolves when its count drops to 0
            below, due = standing.get(organiser, (0, 0))
            self.below.labels(organiser).set(below)
            self.decision_due.labels(organiser).set(due)


@dataclass(frozen=True)
class Forecasting:
    """What the forecast needs besides the database: its gauges, and where each organiser is told."""

    metrics: ForecastMetrics
    # Organiser code → a role address (EVENTS_ORGANISER_CONTACTS); an event's own
    # `organiser_contact` comes first.
    contacts: Mapping[str, str] = field(default_factory=dict)

    def contact_of(self, event: Due) -> str | None:
        return event.contact or self.contacts.get(event.organiser)


async def forecast_event(conn: Conn, event: Due, now: datetime, forecasting: Forecasting) -> rules.Forecast:
    """Today's forecast of one event, saved; a forecast below the minimum is logged with its
    figures and mailed to the organiser (once per crossing, alert_due), in one transaction."""
    lead = rules.lead_time(event.decide_by, now)
    peers = await repository.peer_curves(conn, event, lead, now) if lead.total_seconds() > 0 else []
    count = await repository.registrations_at(conn, event.event_id, now)
    f = rules.forecast(count, event.published_at, event.decide_by, now, peers)
    below = rules.below_minimum(f, event.minimum)
    async with conn.transaction():
        await repository.save(conn, event, f, below, now)
        if below:
            await _alert_organiser(conn, event, f, now, forecasting.contact_of(event))
        elif f.method != "too-early":
            await repository.close_alert(conn, event.event_id)
    if below:
        # Ids and counts only: the alert's figures, no person in them.
        log.warning(
            "turnout forecast below the minimum: event %s (%s) expects %d of %d by %s (%d now, method %s, %d peers)",
            event.event_id,
            event.organiser,
            f.expected,
            event.minimum,
            event.decide_by.isoformat(),
            f.registrations,
            f.method,
            f.peers,
        )
    return f


async def _alert_organiser(conn: Conn, event: Due, f: rules.Forecast, now: datetime, contact: str | None) -> None:
    """The turnout alert by mail to the organiser's role address, unless this crossing was
    mailed already with figures not materially better (the alert row is locked meanwhile)."""
    if contact is None:
        return  # nowhere to write: the gauge and its alert rule still tell operators
    last = await repository.lock_alert(conn, event.event_id)
    if not rules.alert_due(last, f.expected, event.minimum):
        return
    subject, body = texts.turnout_alert(event.title, event.event_id, f.expected, event.minimum, event.decide_by,
                                        f.registrations, f.method, f.peers)  # fmt: skip
    await request_to_role(conn, contact, "event-turnout-alert", event.event_id, subject, body, event.decide_by)
    await repository.record_alert(conn, event.event_id, f.expected, event.minimum, now)
    log.info("turnout alert mailed to the organiser of event %s (%s)", event.event_id, event.organiser)


async def forecast_all(conn: Conn, now: datetime, forecasting: Forecasting) -> int:
    """Every due event forecast (a short transaction each, no event lock: a forecast changes
    nothing a registration depends on), then the alert figures. Returns how many were forecast."""
    due = await repository.due(conn, now)
    for event in due:
        await forecast_event(conn, event, now, forecasting)
    forecasting.metrics.show(await repository.standing(conn, now))
    return len(due)


async def view(conn: Conn, event: Event) -> dict[str, Any] | None:
    """The `forecast` object of the staff view (None for an event without a minimum)."""
    minimum = event.definition.minimum
    if minimum is None:
        return None
    latest = await repository.latest(conn, event.event_id)
    decided = await repository.decision(conn, event.event_id)
    return {
        "minimum": minimum.registrations,
        "decide_by": minimum.decide_by.isoformat(),
        "computed_at": latest["computed_at"].isoformat() if latest else None,
        "registrations": latest["registrations"] if latest else None,
        "expected": latest["expected"] if latest else None,
        "method": latest["method"] if latest else None,
        "peers": latest["peers"] if latest else None,
        "peer_fraction": latest["peer_fraction"] if latest else None,
        "below_minimum": latest["below_minimum"] if latest else None,
        "decision": None
        if decided is None
        else {
            "decision": decided["decision"],
            "registrations": decided["registrations"],
            "decided_at": decided["decided_at"].isoformat(),
        },
    }


async def decide(conn: Conn, event: Event, decision: str, who: str, now: datetime) -> int:
    """The organiser's answer (the event locked by the caller): `confirm` records it, `cancel`
    cancels the event through its own cancellation (`event-cancelled`: every registrant is told).
    Returns the registrations she decided on."""
    if event.definition.minimum is None:
        raise RefusedError(409, "the event has no minimum to decide on")
    if event.status != "published":
        raise RefusedError(409, f"the event is {event.status}")
    if now >= event.starts_at:
        raise RefusedError(409, "the event has started")
    count = await repository.registrations_at(conn, event.event_id, now)
    outcome = "confirmed" if decision == "confirm" else "cancelled"
    if not await repository.record_decision(conn, event.event_id, outcome, count, who, now):
        raise RefusedError(409, "the event was decided already")
    if outcome == "cancelled":
        await lifecycle.cancel_event(conn, event.event_id, now)
    return count
