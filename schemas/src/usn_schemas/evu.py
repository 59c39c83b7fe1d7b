"""Pinned inbound contract `evu-enrolled` v1: what USN's EVU (continuing education) system publishes.

Like `graduated`, it comes from outside the platform and arrives in the clear
(never sealed): topic `evu-enrolled`, key = subject = the student number
(docs/contracts.md). Analytics is its consumer (enrolments, the strategy's EVU
revenue figure); it keeps only a keyed hash of the student number.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from usn_schemas.envelope import CloudEvent, PersonalData
from usn_schemas.graduated import Faculty, IsoDate

EVU_ENROLLED_V1 = "no.usn.evu.enrolled.v1"


class EvuEnrolment(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    # The EVU system's own id of this enrolment: a repeat of it is the same enrolment.
    enrolment_id: str = Field(min_length=1, max_length=100)
    # Personal data in the clear, as on `graduated`; the link to a member.
    student_number: str = PersonalData(min_length=1, max_length=32)
    course_code: str = Field(min_length=1, max_length=64)
    course_name: str | None = Field(None, max_length=300)
    faculty: Faculty
    credits: float | None = Field(None, ge=0, le=1000)
    # What the participant pays (NOK); None when the course is free or financed otherwise.
    price_nok: int | None = Field(None, ge=0, le=10_000_000)
    starts_on: IsoDate | None = None
    enrolled_at: AwareDatetime


class EvuEnrolledV1(CloudEvent):
    """topic `evu-enrolled`, key = student number, subject = student number."""

    EVENT_TYPE: ClassVar[str] = EVU_ENROLLED_V1
    SEALED_AT_SOURCE: ClassVar[bool] = False  # the EVU system publishes in the clear
    type: Literal["no.usn.evu.enrolled.v1"]
    data: EvuEnrolment

    @model_validator(mode="after")
    def _subject_is_student_number(self) -> EvuEnrolledV1:
        if self.subject != self.data.student_number:
            raise ValueError("subject must equal data.student_number")
        return self
