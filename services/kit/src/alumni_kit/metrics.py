"""Prometheus metrics every service exposes on /metrics.

Labels carry topics, outcomes and reasons only: never a name, an e-mail or an id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class KitMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.consumed = Counter(
            "alumni_messages_consumed",
            "Messages consumed, by outcome (processed, duplicate, dead_lettered, erased_subject, unknown_type).",
            ["topic", "outcome"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "alumni_messages_dead_lettered",
            "Messages sent to <topic>.dlq, by reason kind.",
            ["topic", "kind"],
            registry=r,
        )
        self.produced = Counter(
            "alumni_messages_produced", "Messages published by the outbox relay.", ["topic"], registry=r
        )
        self.handler_seconds = Histogram(
            "alumni_batch_handler_seconds",
            "Time to process one consumed batch, commit included.",
            ["topic"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.batch_size = Histogram(
            "alumni_batch_records",
            "Records per consumed batch.",
            ["topic"],
            registry=r,
            buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 5000),
        )
        self.outbox_backlog = Gauge("alumni_outbox_backlog_messages", "Outbox rows not yet published.", registry=r)
        self.failed_attempts = Counter(
            "alumni_consumer_failed_attempts",
            "Attempts at one record that failed for a reason that is not transient; after"
            " the consumer's max attempts the record is dead-lettered (processing-error).",
            ["topic"],
            registry=r,
        )
        self.rewinds = Counter(
            "alumni_consumer_rewinds",
            "Batches rewound because dead-lettering itself failed: the partition is not advancing.",
            ["topic"],
            registry=r,
        )
        self.outbox_quarantined = Counter(
            "alumni_outbox_rows_quarantined",
            "Outbox rows moved to the quarantine after the broker refused them max_attempts times.",
            ["topic"],
            registry=r,
        )
        self.outbox_quarantine = Gauge(
            "alumni_outbox_quarantined_rows",
            "Rows now in the outbox quarantine (refused by the broker), awaiting an operator.",
            ["topic"],
            registry=r,
        )
        self.transient_retries = Counter(
            "alumni_transient_retries",
            "Retries after a transient failure (database or broker down).",
            ["operation"],
            registry=r,
        )
