"""Prometheus metrics every service exposes on /metrics.

Labels carry topics, outcomes and reasons only: never a name, an e-mail or an id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

# What one message's handling ended as (alumni_messages_handled_total): a fixed set.
OUTCOMES = ("ok", "duplicate", "dead_lettered", "retried")
# HTTP methods a route can have; anything else a client sends is counted as "other".
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The route label of a request no route matched (a scan of random paths stays one series).
UNMATCHED_ROUTE = "unmatched"


@dataclass
class KitMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        # process_* (CPU, memory, open files), python_info and python_gc_*: the runtime's own health.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.handled = Counter(
            "alumni_messages_handled",
            "Consumed messages by how their handling ended: ok (applied, or skipped by design),"
            " duplicate (seen before), dead_lettered, retried (an attempt failed and was tried again).",
            ["topic", "outcome"],
            registry=r,
        )
        self.handler_duration = Histogram(
            "alumni_handler_duration_seconds",
            "Time of one transaction of the service's handler (inbox, effects, positions) on a batch.",
            ["topic"],
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.outbox_oldest_age = Gauge(
            "alumni_outbox_oldest_unsent_age_seconds",
            "Age of the oldest outbox row not yet published (0 when the outbox is empty).",
            registry=r,
        )
        self.http_requests = Counter(
            "alumni_http_requests",
            "HTTP requests answered, by method, route template (never the raw path) and status code.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "alumni_http_request_duration_seconds",
            "Time to answer one HTTP request, by method and route template.",
            ["method", "route"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
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
        # End offset minus the position this service has applied, per partition it is
        # assigned (a replica reports its own partitions; sum over replicas is the group's lag).
        self.consumer_lag = Gauge(
            "alumni_consumer_lag_messages",
            "Records on a partition this consumer has not applied yet (end offset - applied position).",
            ["topic", "partition"],
            registry=r,
        )
        self.transient_retries = Counter(
            "alumni_transient_retries",
            "Retries after a transient failure (database or broker down).",
            ["operation"],
            registry=r,
        )
