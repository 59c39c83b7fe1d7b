"""What counts as a transient failure (retried, never dead-lettered)."""

from __future__ import annotations

import asyncpg
import pytest

from alumni_kit.errors import is_transient


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(),
        asyncpg.exceptions.InternalClientError("unexpected state during COPY"),  # server gone mid-COPY
        asyncpg.exceptions.AdminShutdownError(),
        asyncpg.exceptions.CannotConnectNowError(),
        asyncpg.exceptions.TooManyConnectionsError(),
        asyncpg.exceptions.SerializationError(),
    ],
)
def test_outages_are_transient(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc", [ValueError("bad"), asyncpg.exceptions.UniqueViolationError(), asyncpg.exceptions.DataError()]
)
def test_errors_in_the_input_or_code_are_not(exc: BaseException) -> None:
    assert not is_transient(exc)
