"""Plain, greppable log lines. Personal data never goes here: log ids, not names."""

from __future__ import annotations

import logging
import sys
import traceback

import asyncpg

from alumni_kit.errors import InputRefusedError


def setup_logging(service: str, level: str = "INFO") -> None:
    fmt = f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s"
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr, force=True)
    # aiokafka logs every (re)connection at INFO; keep its warnings only.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


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
