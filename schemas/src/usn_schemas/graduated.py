"""Pinned inbound contract `graduated` v1: what FS and other USN systems publish.

Keep it exactly as pinned in the foundation issue. A defect in an *optional*
field (malformed e-mail or phone, non-numeric credits) must not cost the
university a member: the field is dropped and the defect recorded instead.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from usn_schemas.envelope import CloudEvent, PersonalData
from usn_schemas.vocabulary import Faculty as Faculty  # re-exported: contracts import it from here

GRADUATED_V1 = "no.usn.fs.graduated.v1"
DegreeLevel = Literal["bachelor", "master", "phd", "evu", "exchange", "other"]

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def _strict_iso_date(value: Any) -> Any:
    # pydantic's lax date also takes timestamps and datetimes; the contract says YYYY-MM-DD.
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_strict_iso_date)]


class FieldDefect(BaseModel):
    """An optional field that was present but invalid, and so was left out."""

    model_config = ConfigDict(frozen=True)
    field: str
    reason: str


def _check_email(v: Any) -> str | None:
    return None if isinstance(v, str) and len(v) <= 254 and _EMAIL.match(v) else "not an e-mail address"


def _check_phone(v: Any) -> str | None:
    return None if isinstance(v, str) and _E164.match(v) else "not an E.164 phone number (+4712345678)"


def _check_credits(v: Any) -> str | None:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1000
    return None if ok else "not a number between 0 and 1000"


def _check_text(v: Any) -> str | None:
    return None if isinstance(v, str) and 0 < len(v) <= 300 else "not a text of 1-300 characters"


_OPTIONAL_CHECKS = {
    "email": _check_email,
    "phone": _check_phone,
    "credits": _check_credits,
    "programme_name": _check_text,
    "campus": _check_text,
}


class GraduatedData(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    student_number: str = Field(min_length=1, max_length=32)
    given_name: str = PersonalData(min_length=1, max_length=200)
    family_name: str = PersonalData(min_length=1, max_length=200)
    email: str | None = PersonalData(None)
    phone: str | None = PersonalData(None)
    programme_code: str = Field(min_length=1, max_length=64)
    programme_name: str | None = None
    faculty: Faculty
    campus: str | None = None
    degree_level: DegreeLevel
    graduation_date: IsoDate
    credits: float | None = None
    # Not part of the wire contract: filled in while parsing, never published.
    defects: SkipJsonSchema[tuple[FieldDefect, ...]] = Field(default=(), exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_invalid_optionals(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        doc = {k: v for k, v in raw.items() if k != "defects"}
        defects = []
        for name, check in _OPTIONAL_CHECKS.items():
            if doc.get(name) is None:
                continue
            reason = check(doc[name])
            if reason:
                defects.append(FieldDefect(field=name, reason=reason))
                del doc[name]
        doc["defects"] = tuple(defects)
        return doc


class GraduatedV1(CloudEvent):
    """topic `graduated`, key = student number, subject = student number."""

    EVENT_TYPE: ClassVar[str] = GRADUATED_V1
    SEALED_AT_SOURCE: ClassVar[bool] = False  # FS publishes in the clear
    type: Literal["no.usn.fs.graduated.v1"]
    data: GraduatedData

    @model_validator(mode="after")
    def _subject_is_student_number(self) -> GraduatedV1:
        if self.subject != self.data.student_number:
            raise ValueError("subject must equal data.student_number")
        return self
