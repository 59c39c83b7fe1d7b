"""Logs say where something failed, never the data in the failure's message."""

from __future__ import annotations


def test_failure_logs_name_the_place_not_the_message() -> None:
    from alumni_kit.logs import where_it_failed

    try:
        raise ValueError("Key (student_number)=(241337) already exists")
    except ValueError as exc:
        text = where_it_failed(exc)
    assert text.startswith("ValueError at test_logs.py:")
    assert "241337" not in text
