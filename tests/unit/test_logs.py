"""Logs say where something failed, never the data in the failure's message."""

from __future__ import annotations

import logging

import asyncpg

from alumni_kit.errors import InputRefusedError
from alumni_kit.logs import RepeatFilter, processing_failure


def test_failure_logs_name_the_place_not_the_message() -> None:
    from alumni_kit.logs import where_it_failed

    try:
        raise ValueError("Key (student_number)=(241337) already exists")
    except ValueError as exc:
        text = where_it_failed(exc)
    assert text.startswith("ValueError at test_logs.py:")
    assert "241337" not in text


def test_dead_letter_reasons_never_quote_the_failing_data() -> None:
    """Handlers see opened personal data; a database error quotes it, the reason must not."""
    error = asyncpg.exceptions.CheckViolationError("new row violates check constraint")
    error.detail = "Failing row contains (kari@example.no)"  # type: ignore[attr-defined]
    try:
        raise error
    except asyncpg.PostgresError as exc:
        reason = processing_failure(exc)
    assert "kari@example.no" not in reason
    assert "CheckViolationError at test_logs.py" in reason
    refused = InputRefusedError("unknown purpose 'lottery'")
    assert processing_failure(refused) == "InputRefusedError: unknown purpose 'lottery'"


def test_a_kafka_client_repeating_itself_is_logged_once_per_window_with_the_count() -> None:
    """A broker outage makes every client log the same failure ten times a second."""

    def record(name: str, node: int) -> logging.LogRecord:
        return logging.LogRecord(name, logging.ERROR, "x.py", 1, "Unable connect to node with id %s", (node,), None)

    now = [100.0]
    quiet = RepeatFilter("aiokafka", window_seconds=10.0, clock=lambda: now[0])
    first = record("aiokafka", 1)
    assert quiet.filter(first)
    assert [quiet.filter(record("aiokafka", n)) for n in range(5)] == [False] * 5
    assert quiet.filter(record("aiokafka.consumer.fetcher", 1)), "another logger is another line"
    assert quiet.filter(record("alumni.broker", 1)), "only the prefix's loggers are filtered"
    assert quiet.filter(record("aiokafkax", 1))

    now[0] += 9.9
    assert not quiet.filter(record("aiokafka", 1))
    now[0] += 0.2
    after = record("aiokafka", 7)
    assert quiet.filter(after)
    assert after.getMessage() == "Unable connect to node with id 7 [6 more like this in the last 10 s]"
    assert first.getMessage() == "Unable connect to node with id 1"


def test_log_lines_carry_the_trace_and_span_ids_of_the_span_they_are_written_in() -> None:
    import io

    from opentelemetry.sdk.trace import TracerProvider

    from alumni_kit.logs import LOG_FORMAT
    from alumni_kit.tracing import TraceIds

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter(LOG_FORMAT.format(service="membership")))
    handler.addFilter(TraceIds())
    log = logging.getLogger("test.trace_ids")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        tracer = TracerProvider().get_tracer("test")  # a provider of its own: the global one stays as it is
        with tracer.start_as_current_span("process graduated") as span:
            log.info("inside")
        log.info("outside")
    finally:
        log.removeHandler(handler)
    inside, outside = out.getvalue().splitlines()
    ctx = span.get_span_context()
    assert f"[trace={ctx.trace_id:032x} span={ctx.span_id:016x}]: inside" in inside
    assert "[trace=- span=-]: outside" in outside
