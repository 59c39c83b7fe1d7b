"""Contracts membership produces: `volunteer-offered`, `volunteer-withdrawn` (key = member id).

A member offers (or stops offering) to help USN in one way: mentoring, a guest
lecture, and so on. Each event carries one such change, with the member's
faculties and programme codes at that moment, so a faculty team can act on it
without asking membership who she is.

`sequence` (in the envelope and in `data`) is per member and strictly increasing
across both topics: per member × offer type, the fact with the highest sequence
is the current one, whatever order the two topics are read in.

No personal data: the member id is a random UUID and faculties and programme
codes are shared by hundreds; names and addresses stay in membership.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from usn_schemas.envelope import CloudEvent
from usn_schemas.graduated import Faculty

VOLUNTEER_OFFERED_V1 = "no.usn.alumni.volunteer-offered.v1"
VOLUNTEER_WITHDRAWN_V1 = "no.usn.alumni.volunteer-withdrawn.v1"

# What alumni offer (the survey in the strategy document); a new type is a new major version.
OfferType = Literal[
    "mentor",
    "guest-lecture",
    "research-surveys",
    "research-co-development",
    "thesis-topics",
    "boards-committees",
    "professional-networks",
]
OFFER_TYPES: tuple[OfferType, ...] = get_args(OfferType)


class VolunteerFact(BaseModel):
    """One change of one member's offer."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    member_id: str
    sequence: int = Field(ge=1)
    offer_type: OfferType
    faculties: list[Faculty]
    programme_codes: list[str]
    recorded_at: datetime


class VolunteerOfferedV1(CloudEvent):
    EVENT_TYPE: ClassVar[str] = VOLUNTEER_OFFERED_V1
    type: Literal["no.usn.alumni.volunteer-offered.v1"]
    data: VolunteerFact


class VolunteerWithdrawnV1(CloudEvent):
    EVENT_TYPE: ClassVar[str] = VOLUNTEER_WITHDRAWN_V1
    type: Literal["no.usn.alumni.volunteer-withdrawn.v1"]
    data: VolunteerFact
