"""Plain, greppable log lines. Personal data never goes here: log ids, not names."""

from __future__ import annotations

import logging
import math
import sys
import time
import traceback
from collections.abc import Callable

import asyncpg

from alumni_kit.errors import InputRefusedError
from alumni_kit.tracing import TraceIds

# trace/span: the ids of the OpenTelemetry span the line was written in ("-" outside one),
# to find a line's trace in the tracing backend and a trace's lines here.
LOG_FORMAT = "%(asctime)s %(levelname)s {service} %(name)s [trace=%(trace_id)s span=%(span_id)s]: %(message)s"


def setup_logging(service: str, level: str = "INFO") -> None:
    fmt = LOG_FORMAT.format(service=service)
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr, force=True)
    # aiokafka logs every (re)connection at INFO; keep its warnings only.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RepeatFilter("aiokafka", window_seconds=10.0))
        handler.addFilter(TraceIds())


class RepeatFilter(logging.Filter):
    """One line per logger and message every `window_seconds` from loggers under `prefix`.

    While the broker is down every Kafka client of a process logs the same connection
    failure at each retry, about ten a second each (a 20 s broker outage wrote 3,000 to
    7,000 ERROR lines per service). The first line says it at once; the next one after
    the window says how many were left out meanwhile. Messages are grouped by their
    template, so "node 1 unreachable" and "node 2 unreachable" count as one.
    """

    def __init__(self, prefix: str, window_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        # A handler filter (logger filters do not see the records of child loggers).
        super().__init__()
        self._prefix, self._window, self._clock = prefix, window_seconds, clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}  # → (last shown, left out since)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != self._prefix and not record.name.startswith(self._prefix + "."):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        shown, left_out = self._seen.get(key, (-math.inf, 0))
        if now - shown < self._window:
            self._seen[key] = (shown, left_out + 1)
            return False
        self._seen[key] = (now, 0)
        if left_out:
            # Appended to the template (no % in it): the record's args still fill the rest.
            record.msg = f"{record.msg} [{left_out} more like this in the last {now - shown:.0f} s]"
        return True


def where_it_failed(exc: BaseException) -> str:
    """An exception's class and the line that raised it, without its message.

    Messages can carry data (a database error quotes the conflicting key), so
    logs and dead-letter headers get only this (see `processing_failure`).
    """
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    return f"{type(exc).__name__} at {last.filename.rsplit('/', 1)[-1]}:{last.lineno} in {last.name}"


def processing_failure(exc: BaseException) -> str:
    """Why a handler failed, for a dead letter's headers: never the exception's text.

    Headers are not sealed and outlive an erasure, while handlers work on opened
    personal data, and database errors quote it ("Failing row contains …").
    So: where it failed, plus the SQLSTATE and the constraint for database errors.
    """
    if isinstance(exc, InputRefusedError):
        return f"{type(exc).__name__}: {str(exc)[:500]}"
    reason = where_it_failed(exc)
    if isinstance(exc, asyncpg.PostgresError):
        constraint = getattr(exc, "constraint_name", None)
        reason += f" (SQLSTATE {exc.sqlstate}{f', constraint {constraint}' if constraint else ''})"
    return reason
