"""Pure membership rules: who qualifies, and how a graduation changes a member.

No I/O here. `apply_graduation` takes the member as stored (or None) and one
graduation, and returns the member as it should be stored plus what changed,
so the handler can publish exactly one fact per effective change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from usn_schemas.graduated import DegreeLevel, GraduatedData
from usn_schemas.ids import new_id
from usn_schemas.member import MemberSnapshot, Programme

MAX_DEFECTS_KEPT = 20


@dataclass(frozen=True)
class EligibilityPolicy:
    eligible_levels: frozenset[DegreeLevel]

    def qualifies(self, graduation: GraduatedData) -> bool:
        return graduation.degree_level in self.eligible_levels


@dataclass
class Member:
    member_id: str
    student_number: str
    given_name: str
    family_name: str
    email: str | None = None
    phone: str | None = None
    programmes: dict[tuple[str, str], Programme] = field(default_factory=dict)
    defects: list[dict[str, str]] = field(default_factory=list)
    # Which event last set each programme (kept for audits and replay checks).
    programme_sources: dict[tuple[str, str], str] = field(default_factory=dict)

    def snapshot(self) -> MemberSnapshot:
        programmes = sorted(self.programmes.values(), key=lambda p: (p.graduation_date, p.programme_code))
        return MemberSnapshot(
            member_id=self.member_id,
            student_number=self.student_number,
            given_name=self.given_name,
            family_name=self.family_name,
            email=self.email,
            phone=self.phone,
            faculties=sorted({p.faculty for p in programmes}),
            programmes=programmes,
        )


@dataclass(frozen=True)
class Change:
    kind: Literal["registered", "updated"]
    changed: tuple[str, ...]


def programme_of(g: GraduatedData) -> Programme:
    return Programme(
        programme_code=g.programme_code,
        programme_name=g.programme_name,
        faculty=g.faculty,
        campus=g.campus,
        degree_level=g.degree_level,
        graduation_date=g.graduation_date,
        credits=g.credits,
    )


def apply_graduation(
    member: Member | None,
    graduation: GraduatedData,
    event_id: str,
    policy: EligibilityPolicy,
    new_id: Callable[[], str] = new_id,
) -> tuple[Member | None, Change | None]:
    """The member after `graduation`, and the change (None when nothing changed)."""
    if not policy.qualifies(graduation):
        return member, None
    if member is None:
        member = Member(
            member_id=new_id(),
            student_number=graduation.student_number,
            given_name=graduation.given_name,
            family_name=graduation.family_name,
        )
        _merge(member, graduation, event_id)
        return member, Change("registered", ())
    changed = _merge(member, graduation, event_id)
    return member, (Change("updated", tuple(changed)) if changed else None)


def _merge(member: Member, g: GraduatedData, event_id: str) -> list[str]:
    """Fold `g` into `member`; the newer fact (in partition order) wins for names and contact."""
    changed = []
    for name in ("given_name", "family_name", "email", "phone"):
        value = getattr(g, name)
        if value is not None and value != getattr(member, name):
            setattr(member, name, value)
            changed.append(name)
    key = (g.programme_code, g.degree_level)
    programme = programme_of(g)
    if member.programmes.get(key) != programme:
        member.programmes[key] = programme
        member.programme_sources[key] = event_id
        changed.append("programmes")
    if g.defects:
        member.defects = (
            member.defects + [{"field": d.field, "reason": d.reason, "event_id": event_id} for d in g.defects]
        )[-MAX_DEFECTS_KEPT:]
    return changed
