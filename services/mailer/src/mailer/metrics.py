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
        # The platform-wide names (docs/operations.md): SMTP hand-offs and every bounce.
        self.smtp_sends = Counter(
            "alumni_smtp_sends",
            "Messages handed to the SMTP relay, by its answer (sent, retry: 4xx, bounced: 5xx,"
            " unavailable: no answer, uncertain: connection lost during DATA).",
            ["outcome"],
            registry=registry,
        )
        self.email_bounces = Counter(
            "alumni_email_bounces",
            "Bounces: hard (a 5xx at the hand-off or a permanent DSN), soft (a temporary DSN).",
            ["kind"],
            registry=registry,
        )
        for outcome in ("sent", "retry", "bounced", "unavailable", "uncertain"):
            self.smtp_sends.labels(outcome)
        for kind in ("hard", "soft"):
            self.email_bounces.labels(kind)
