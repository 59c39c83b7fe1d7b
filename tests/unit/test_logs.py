"""Logs say where something failed, never the data in the failure's message."""

from __future__ import annotations

import asyncpg

from alumni_kit.errors import InputRefusedError
from alumni_kit.logs import processing_failure


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
