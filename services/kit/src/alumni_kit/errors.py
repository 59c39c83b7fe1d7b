"""Telling transient failures (retry, never dead-letter) from bad input."""

from __future__ import annotations

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError

_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,  # connection refused/reset: the database or broker is down
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # e.g. the connection was closed under us
    # asyncpg's protocol raises this when the server goes away in the middle of
    # a COPY (seen in the PostgreSQL-restart test): the connection, not the input.
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,  # class 57: admin/crash shutdown, cancelled by admin
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: too many connections, out of memory
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
)


def is_transient(exc: BaseException) -> bool:
    """True when trying again later may succeed without any change to the input."""
    return isinstance(exc, _TRANSIENT)


class InputRefusedError(ValueError):
    """A handler refuses an event for a reason it states itself (e.g. an unknown purpose).

    Its message goes into the dead letter's headers as it is, so it must name
    fields and rules, never personal data; any other failure is reported only by
    where it happened (`logs.processing_failure`).
    """
