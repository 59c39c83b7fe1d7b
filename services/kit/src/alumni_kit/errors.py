"""Telling transient failures (retry, never dead-letter) from bad input."""

from __future__ import annotations

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError

_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,  # connection refused/reset: the database or broker is down
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # e.g. the connection was closed under us
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
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
