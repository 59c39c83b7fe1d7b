"""OpenTelemetry tracing with W3C trace context carried in Kafka headers.

The consumer continues the producer's trace; the outbox stores the context of
the span that wrote it, and the relay publishes it again, so one trace follows
a graduate from `graduated` to every later fact. Span attributes hold topics,
partitions and event ids only, never personal data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

KafkaHeaders = Sequence[tuple[str, bytes]]


def setup_tracing(service: str, exporter: str) -> None:
    """Install an SDK provider unless tracing is off ("none" keeps the no-op API)."""
    if exporter == "none":
        return
    provider = TracerProvider(resource=Resource.create({"service.name": f"usn-alumni-{service}"}))
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    else:  # "otlp": needs the optional opentelemetry-exporter-otlp package
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # type: ignore[import-not-found]

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def context_from_headers(headers: Iterable[tuple[str, bytes]] | None) -> Context:
    carrier = {k: v.decode("latin-1") for k, v in (headers or ()) if k in ("traceparent", "tracestate")}
    return propagate.extract(carrier)


def headers_from_context(ctx: Context | None = None) -> dict[str, str]:
    """The current (or given) trace context as W3C header values."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=ctx)
    return carrier
