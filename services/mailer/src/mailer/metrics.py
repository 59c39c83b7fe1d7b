"""The mailer's own metrics. Labels are outcomes and reasons only: never who or which address."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class MailerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "mailer_deliveries", "Send attempts by outcome (sent, retry, bounced, ...).", ["outcome"], registry=registry
        )
        self.skipped = Counter(
            "mailer_deliveries_skipped", "Recipients not sent to, by reason.", ["reason"], registry=registry
        )
        self.paused = Counter(
            "mailer_relay_pauses", "Times sending paused because the relay was down.", registry=registry
        )
        self.bounces = Counter("mailer_bounces", "DSNs received, by kind.", ["kind"], registry=registry)
