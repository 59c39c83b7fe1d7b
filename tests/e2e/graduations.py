"""Hand-written graduated v1 events for the tests."""

from __future__ import annotations

from typing import Any


def graduation(
    event_id: str,
    sn: str,
    code: str = "BSL",
    level: str = "bachelor",
    day: str = "2024-06-14",
    faculty: str = "TNM",
    **extra: Any,
) -> dict[str, Any]:
    data = {
        "student_number": sn,
        "given_name": "Åse",
        "family_name": "Ødegård-Li",
        "programme_code": code,
        "faculty": faculty,
        "degree_level": level,
        "graduation_date": day,
        **extra,
    }
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/fs",
        "type": "no.usn.fs.graduated.v1",
        "time": "2025-01-01T00:00:00Z",
        "subject": sn,
        "datacontenttype": "application/json",
        "data": data,
    }
