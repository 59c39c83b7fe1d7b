"""Who sees which figures, and the query parameters every read route shares: pure.

comms and the advisory board (aab) see every faculty; an AK or AT only her own.
Every figure is an aggregate, suppressed before it is scoped (views.py), so a faculty's
view is the same cell that the USN-wide view shows (no two views differ by a small count).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from alumni_kit.auth import SCOPED_ROLES, StaffPrincipal
from usn_schemas.vocabulary import FACULTIES

# RFC 3339 date-time (section 5.6): a full date, a time with seconds, and an offset or Z.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


class ParameterError(ValueError):
    """A query parameter broke its rule: `field` names it (a 422)."""

    def __init__(self, field: str, msg: str) -> None:
        super().__init__(msg)
        self.field = field
        self.msg = msg


class ForbiddenError(Exception):
    """The caller's role or faculty may not see this (a 403)."""


def parse_as_of(value: str | None, now: datetime) -> datetime | None:
    """None (live) or an aware moment not after `now`."""
    if value is None:
        return None
    if not _RFC3339.match(value):
        raise ParameterError("as_of", "an RFC 3339 date-time with an offset, e.g. 2026-06-30T12:00:00Z")
    text = value.replace("Z", "+00:00").replace("z", "+00:00").replace("t", "T")
    # Python reads at most six fractional digits; RFC 3339 allows any number: keep microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ParameterError("as_of", "not a real date-time (month, day, hour or offset out of range)") from None
    if moment > now:
        raise ParameterError("as_of", "in the future: projections know only what has happened")
    return moment


@dataclass(frozen=True)
class Scope:
    """The faculties whose figures a response holds (None: USN-wide, every faculty)."""

    faculty: str | None

    def faculties(self) -> tuple[str, ...]:
        return FACULTIES if self.faculty is None else (self.faculty,)


def scope_for(who: StaffPrincipal, faculty: str | None) -> Scope:
    """The asked-for faculty (or none), checked against the caller's own."""
    if faculty is not None and faculty not in FACULTIES:
        raise ParameterError("faculty", f"one of {', '.join(FACULTIES)}")
    if who.role in SCOPED_ROLES:
        if faculty is not None and faculty != who.faculty:
            raise ForbiddenError(f"role {who.role} sees only faculty {who.faculty}")
        return Scope(who.faculty)
    return Scope(faculty)
