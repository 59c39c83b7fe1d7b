"""The one copy of every USN Alumni event contract (docs/architecture.md §3)."""

from usn_schemas.envelope import CloudEvent, ContractError, PersonalData, personal_fields
from usn_schemas.graduated import GRADUATED_V1, FieldDefect, GraduatedV1
from usn_schemas.member import (
    MEMBER_REGISTERED_V1,
    MEMBER_UPDATED_V1,
    MemberRegisteredV1,
    MemberSnapshot,
    MemberUpdatedV1,
    Programme,
)

__all__ = [
    "GRADUATED_V1",
    "MEMBER_REGISTERED_V1",
    "MEMBER_UPDATED_V1",
    "CloudEvent",
    "ContractError",
    "FieldDefect",
    "GraduatedV1",
    "MemberRegisteredV1",
    "MemberSnapshot",
    "MemberUpdatedV1",
    "PersonalData",
    "Programme",
    "personal_fields",
]
