"""The events service's own metrics (the kit adds consumer, outbox and HTTP ones).
Labels are outcomes only: never who, never which event."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class EventsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registrations = Counter(
            "events_registrations",
            "Registration requests by outcome (registered, waitlisted, or the refusal's status code).",
            ["outcome"],
            registry=registry,
        )
        self.offers_expired = Counter(
            "events_offers_expired", "Offers from the waiting list that ran out of time.", registry=registry
        )
        self.sweep_failures = Counter(
            "events_offer_sweep_failures",
            "Rounds of the offer sweep that failed (retried next round).",
            registry=registry,
        )
