"""Values that contracts, routes and pages share: defined once, here.

Faculties and languages are part of the contracts (a graduation's faculty, a
member's language); the id pattern is what every route accepts as an entity id.
"""

from __future__ import annotations

from typing import Literal, get_args

Faculty = Literal["HH", "TNM", "HS", "HIU"]
FACULTIES: tuple[Faculty, ...] = get_args(Faculty)

Language = Literal["nb", "en"]  # bokmål first: the default everywhere
LANGUAGES: tuple[Language, ...] = get_args(Language)

# A UUID as text (the platform's entity ids); either case, as PostgreSQL's uuid accepts.
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
