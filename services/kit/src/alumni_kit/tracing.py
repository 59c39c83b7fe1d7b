"""OpenTelemetry tracing with W3C trace context carried in Kafka headers.

One trace follows a graduate from `graduated` to the SMTP hand-off:

- the consumer (`consumer.py`) makes a `process <topic>` span (kind CONSUMER) per
  event, child of the producer's context in the record's headers, and hands the
  handler that span's context (`Incoming.trace_headers`);
- a handler stores that context with what it writes to the outbox (its
  `OutboxMessage.headers`) or to its own tables (the mailer's queued mails);
- the outbox relay makes a `publish <topic>` span (kind PRODUCER) per row, child
  of the stored context, and sends the record with the publish span's context;
- the mailer makes an `smtp send` span (kind CLIENT) at the hand-off.

Attributes follow the messaging semantic conventions and hold topics,
partitions, offsets, groups and event ids: never personal data (no keys, names,
addresses).

With tracing off (the default) no span is made at all: the incoming context is
handed on unchanged, so the trace still links up wherever a collector runs, at
no cost per event in a backfill.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.trace import Span, SpanKind

TRACE_HEADERS = ("traceparent", "tracestate")
_enabled = False
_TRACER = "usn-alumni"


def setup_tracing(service: str, exporter: str) -> None:
    """Install an SDK provider unless tracing is off ("none" keeps the no-op API).

    "otlp" sends over OTLP/HTTP; where to and how is the SDK's standard
    environment (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS,
    OTEL_BSP_SCHEDULE_DELAY, ...), see docs/configuration.md.
    """
    global _enabled
    if exporter == "none":
        return
    provider = TracerProvider(resource=Resource.create({"service.name": f"usn-alumni-{service}"}))
    if exporter == "console":  # for development: every span printed as it ends
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _enabled = True


def shutdown_tracing() -> None:
    """Export what is still buffered (a stopping process must not lose its last spans)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


def tracing_enabled() -> bool:
    return _enabled


def trace_headers(kafka_headers: Iterable[tuple[str, bytes]] | None) -> dict[str, str]:
    """The W3C trace context of a consumed record, as text."""
    return {k: v.decode("latin-1") for k, v in (kafka_headers or ()) if k in TRACE_HEADERS and v is not None}


def context_of(span: Span) -> dict[str, str]:
    """`span`'s W3C context as headers, to store or send on."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def start_span(
    name: str, parent: Mapping[str, str], kind: SpanKind, attributes: Mapping[str, str | int] | None = None
) -> Span:
    """A span continuing the W3C context `parent`, not made current (the caller ends it)."""
    tracer = trace.get_tracer(_TRACER)
    return tracer.start_span(name, context=propagate.extract(dict(parent)), kind=kind, attributes=attributes)


def consumer_attributes(topic: str, partition: int, offset: int, group: str, event_id: str) -> dict[str, str | int]:
    """The messaging semantic conventions of one consumed Kafka record."""
    return {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": topic,
        "messaging.destination.partition.id": str(partition),
        "messaging.kafka.offset": offset,
        "messaging.consumer.group.name": group,
        "messaging.message.id": event_id,
    }


def producer_attributes(topic: str, partition: int) -> dict[str, str | int]:
    return {
        "messaging.system": "kafka",
        "messaging.operation.type": "publish",
        "messaging.operation.name": "publish",
        "messaging.destination.name": topic,
        "messaging.destination.partition.id": str(partition),
    }


@contextmanager
def event_span(name: str, incoming: dict[str, str], event_id: str) -> Iterator[dict[str, str]]:
    """Handle one event inside a span continuing `incoming`; yields the context to hand on."""
    if not _enabled:
        yield incoming
        return
    tracer = trace.get_tracer(_TRACER)
    with tracer.start_as_current_span(name, context=propagate.extract(incoming)) as span:
        span.set_attribute("messaging.message.id", event_id)
        outgoing: dict[str, str] = {}
        propagate.inject(outgoing)
        yield outgoing


class TraceIds(logging.Filter):
    """Adds `trace_id` and `span_id` of the current span to each log record ("-" outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        record.trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else "-"
        record.span_id = format(ctx.span_id, "016x") if ctx.is_valid else "-"
        return True
