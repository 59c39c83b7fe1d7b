"""OpenTelemetry tracing with W3C trace context carried in Kafka headers.

The consumer continues the producer's trace; the outbox stores the context of
the span that wrote it, and the relay publishes it again, so one trace follows
a graduate from `graduated` to every later fact. Span attributes hold topics,
partitions and event ids only, never personal data.

With tracing off (the default) no span is made at all: the incoming context is
handed on unchanged, so the trace still links up wherever a collector runs,
at no cost per event in a backfill.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor

TRACE_HEADERS = ("traceparent", "tracestate")
_enabled = False


def setup_tracing(service: str, exporter: str) -> None:
    """Install an SDK provider unless tracing is off ("none" keeps the no-op API)."""
    global _enabled
    if exporter == "none":
        return
    provider = TracerProvider(resource=Resource.create({"service.name": f"usn-alumni-{service}"}))
    if exporter == "console":  # for development: every span printed as it ends
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    else:  # "otlp": needs the optional opentelemetry-exporter-otlp package
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found]
            OTLPSpanExporter,
        )

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _enabled = True


def trace_headers(kafka_headers: Iterable[tuple[str, bytes]] | None) -> dict[str, str]:
    """The W3C trace context of a consumed record, as text."""
    return {k: v.decode("latin-1") for k, v in (kafka_headers or ()) if k in TRACE_HEADERS and v is not None}


@contextmanager
def event_span(name: str, incoming: dict[str, str], event_id: str) -> Iterator[dict[str, str]]:
    """Handle one event inside a span continuing `incoming`; yields the context to hand on."""
    if not _enabled:
        yield incoming
        return
    tracer = trace.get_tracer("usn-alumni")
    with tracer.start_as_current_span(name, context=propagate.extract(incoming)) as span:
        span.set_attribute("messaging.message.id", event_id)
        outgoing: dict[str, str] = {}
        propagate.inject(outgoing)
        yield outgoing
