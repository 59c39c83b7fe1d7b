"""Consent's own metrics (the kit adds consumer, outbox and HTTP ones). Labels are
sources, states and purposes only: never who."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from consent.ledger import Outcome


class ConsentMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.facts = Counter(
            "consent_facts_recorded",
            "Facts appended to the consent ledger.",
            ["source", "channel", "purpose", "state"],
            registry=registry,
        )
        self.unchanged = Counter(
            "consent_requests_unchanged",
            "Requests that matched the current state and recorded nothing.",
            ["source"],
            registry=registry,
        )
        self.mails = Counter(
            "consent_mail_requests", "Transactional mails requested from the mailer.", ["kind"], registry=registry
        )
        self.not_invited = Counter(
            "consent_invitations_not_sent",
            "New members with an address who got no invitation, by why (address: one the mailer cannot take).",
            ["why"],
            registry=registry,
        )
        self.refused_links = Counter(
            "consent_links_refused",
            "Member links refused (forged, altered, expired).",
            ["page", "why"],
            registry=registry,
        )

    def recorded(self, source: str, outcome: Outcome) -> None:
        """Call after the transaction committed, so a rolled-back attempt is not counted."""
        for f in outcome.recorded:
            self.facts.labels(f.source, f.channel, f.purpose, f.state).inc()
        if outcome.unchanged:
            self.unchanged.labels(source).inc(outcome.unchanged)
