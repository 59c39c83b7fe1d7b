"""A `graduated` payload for the membership domain's unit tests."""

from __future__ import annotations

from typing import Any

from usn_schemas.graduated import GraduatedData


def grad(**overrides: Any) -> GraduatedData:
    """Kari Nordmann's bachelor in BSL at TNM (June 2022), with `overrides` changed or added."""
    base: dict[str, Any] = {
        "student_number": "1",
        "given_name": "Kari",
        "family_name": "Nordmann",
        "programme_code": "BSL",
        "faculty": "TNM",
        "degree_level": "bachelor",
        "graduation_date": "2022-06-15",
    }
    return GraduatedData.model_validate({**base, **overrides})
