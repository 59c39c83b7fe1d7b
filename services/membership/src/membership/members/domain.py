"""Pure membership rules: who qualifies, and how a graduation changes a member.

No I/O here. `apply_graduation` takes the member as stored (or None) and one
graduation, and returns the member as it should be stored plus what changed,
so the handler can publish exactly one fact per effective change. A pre-alumnus
(a student who signed up) becomes an alumnus on her first qualifying graduation:
the same member, one more history entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from usn_schemas.graduated import DegreeLevel, GraduatedData
from usn_schemas.ids import new_id
from usn_schemas.member import MemberSnapshot, MemberStatus, Programme

MAX_DEFECTS_KEPT = 20


@dataclass(frozen=True)
class EligibilityPolicy:
    eligible_levels: frozenset[DegreeLevel]

    def qualifies(self, graduation: GraduatedData) -> bool:
        return graduation.degree_level in self.eligible_levels


ContactSource = Literal["fs", "member"]


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a member's history (what: 'signed-up', 'graduated', 'approved', …); no personal data."""

    what: str
    detail: dict[str, Any]
    source_event_id: str | None = None


@dataclass
class Member:
    member_id: str
    student_number: str | None
    given_name: str
    family_name: str
    email: str | None = None
    phone: str | None = None
    status: MemberStatus = "alumni"
    # 'member' once she gave her contact details herself: FS's copy no longer overwrites them.
    contact_source: ContactSource = "fs"
    programmes: dict[tuple[str, str], Programme] = field(default_factory=dict)
    defects: list[dict[str, str]] = field(default_factory=list)
    # Which event last set each programme (kept for audits and replay checks).
    programme_sources: dict[tuple[str, str], str] = field(default_factory=dict)
    # History entries not yet stored (the repository writes and clears them).
    new_history: list[HistoryEntry] = field(default_factory=list)

    def snapshot(self) -> MemberSnapshot:
        programmes = sorted(self.programmes.values(), key=lambda p: (p.graduation_date, p.programme_code))
        return MemberSnapshot(
            member_id=self.member_id,
            student_number=self.student_number,
            given_name=self.given_name,
            family_name=self.family_name,
            email=self.email,
            phone=self.phone,
            status=self.status,
            faculties=sorted({p.faculty for p in programmes}),
            programmes=programmes,
            graduated_event_ids=sorted(set(self.programme_sources.values())),
        )


@dataclass(frozen=True)
class Change:
    kind: Literal["registered", "updated"]
    changed: tuple[str, ...]


_FS_FIELDS = ("given_name", "family_name", "email", "phone")


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
    changed = _graduate(member, event_id) + _merge(member, graduation, event_id)
    return member, (Change("updated", tuple(changed)) if changed else None)


def _graduate(member: Member, event_id: str) -> list[str]:
    """A pre-alumnus's first qualifying degree makes her an alumna."""
    if member.status != "pre-alumni":
        return []
    member.status = "alumni"
    member.new_history.append(HistoryEntry("status", {"from": "pre-alumni", "to": "alumni"}, event_id))
    return ["status"]


def _merge(member: Member, g: GraduatedData, event_id: str) -> list[str]:
    """Fold `g` into `member`; the newer fact (in partition order) wins for names and for
    contact details FS gave, never over contact details she gave herself."""
    changed = []
    fields = ("given_name", "family_name") if member.contact_source == "member" else _FS_FIELDS
    for name in fields:
        value = getattr(g, name)
        if value is not None and value != getattr(member, name):
            setattr(member, name, value)
            changed.append(name)
    key = (g.programme_code, g.degree_level)
    programme = programme_of(g)
    if member.programmes.get(key) != programme:
        member.programmes[key] = programme
        member.programme_sources[key] = event_id
        member.new_history.append(HistoryEntry("graduated", _degree(programme), event_id))
        changed.append("programmes")
    if g.defects:
        member.defects = (
            member.defects + [{"field": d.field, "reason": d.reason, "event_id": event_id} for d in g.defects]
        )[-MAX_DEFECTS_KEPT:]
    return changed


def _degree(p: Programme) -> dict[str, Any]:
    return {
        "programme_code": p.programme_code,
        "degree_level": p.degree_level,
        "faculty": p.faculty,
        "graduation_date": p.graduation_date.isoformat(),
    }


@dataclass(frozen=True)
class Person:
    """Who signed up or applied, as she gave it (e-mail verified by then)."""

    given_name: str
    family_name: str
    email: str


def register_pre_alumnus(signup_id: str, student_number: str, person: Person) -> Member:
    """A verified sign-up: the member id is the sign-up's, so its subject key carries over."""
    member = _self_registered(signup_id, student_number, person, "pre-alumni")
    member.new_history.append(HistoryEntry("signed-up", {"via": "student-number", "signup_id": signup_id}))
    return member


def register_associate(application_id: str, person: Person, decision: dict[str, Any]) -> Member:
    """An approved application: a member without a student number (not in FS)."""
    member = _self_registered(application_id, None, person, "associate")
    member.new_history.append(HistoryEntry("approved", {"application_id": application_id, **decision}))
    return member


def _self_registered(member_id: str, student_number: str | None, person: Person, status: MemberStatus) -> Member:
    return Member(
        member_id=member_id,
        student_number=student_number,
        given_name=person.given_name,
        family_name=person.family_name,
        email=person.email,
        status=status,
        contact_source="member",
    )
