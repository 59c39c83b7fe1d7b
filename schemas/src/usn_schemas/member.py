"""Contracts membership produces: `member-registered`, `member-updated`, `member-erased` (key = member id)."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from usn_schemas.envelope import CloudEvent, PersonalData
from usn_schemas.graduated import DegreeLevel, Faculty
from usn_schemas.ids import MemberId
from usn_schemas.vocabulary import Language

MEMBER_REGISTERED_V1 = "no.usn.alumni.member-registered.v1"
MEMBER_UPDATED_V1 = "no.usn.alumni.member-updated.v1"

# pre-alumni: a current student who signed up; alumni: a qualifying degree is known (FS);
# associate: qualifies under the eligibility policy without a degree in FS (an approved application).
MemberStatus = Literal["pre-alumni", "alumni", "associate"]


class Programme(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    programme_code: str
    programme_name: str | None = None
    faculty: Faculty
    campus: str | None = None
    degree_level: DegreeLevel
    graduation_date: date
    credits: float | None = None


class MemberSnapshot(BaseModel):
    """The member as membership now knows her; both events carry the full snapshot."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    member_id: MemberId
    # None for an associate, who is not in FS. Consumers of v1 were written for a
    # string; every one of ours reads it as optional (see docs/membership.md).
    student_number: str | None = PersonalData(None)
    given_name: str = PersonalData()
    family_name: str = PersonalData()
    email: str | None = PersonalData(None)
    phone: str | None = PersonalData(None)
    status: MemberStatus = "alumni"
    # The language she chose in her profile (None: never chosen; services default to bokmål).
    language: Language | None = None
    faculties: list[Faculty]
    # Personal data too: programme, campus and graduation day together can single
    # out one person (a PhD, a small class), so the list travels sealed.
    programmes: list[Programme] = PersonalData()
    # The FS `graduated` events (their CloudEvent ids) her programmes came from: what links
    # FS's records, keyed by the student number that travels sealed here, to the member
    # (`alumni audit member`). FS's event ids are opaque, so not personal data; empty for
    # a member not from FS. Added in v1 as optional (older facts have none).
    graduated_event_ids: list[str] = Field(default_factory=list, max_length=200)


class MemberUpdatedData(MemberSnapshot):
    # What changed, so consumers need not diff: e.g. ["programmes"], ["email"].
    changed: list[str]


class MemberRegisteredV1(CloudEvent):
    """First time a person qualifies as a member."""

    EVENT_TYPE: ClassVar[str] = MEMBER_REGISTERED_V1
    type: Literal["no.usn.alumni.member-registered.v1"]
    data: MemberSnapshot


class MemberUpdatedV1(CloudEvent):
    """A member's facts changed (a second degree, new contact details)."""

    EVENT_TYPE: ClassVar[str] = MEMBER_UPDATED_V1
    type: Literal["no.usn.alumni.member-updated.v1"]
    data: MemberUpdatedData


MEMBER_ERASED_V1 = "no.usn.alumni.member-erased.v1"


class MemberErasure(BaseModel):
    """GDPR art. 17: every service deletes what it holds about `member_id`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    member_id: MemberId
    erased_at: datetime
    requested_by: Literal["member", "staff"]


class MemberErasedV1(CloudEvent):
    EVENT_TYPE: ClassVar[str] = MEMBER_ERASED_V1
    type: Literal["no.usn.alumni.member-erased.v1"]
    data: MemberErasure
