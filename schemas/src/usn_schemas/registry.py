"""Which contracts travel on which topic: the one place consumers look them up."""

from __future__ import annotations

from usn_schemas.envelope import CloudEvent
from usn_schemas.graduated import GraduatedV1
from usn_schemas.member import MemberRegisteredV1, MemberUpdatedV1

TOPIC_CONTRACTS: dict[str, dict[str, type[CloudEvent]]] = {
    "graduated": {GraduatedV1.EVENT_TYPE: GraduatedV1},
    "member-registered": {MemberRegisteredV1.EVENT_TYPE: MemberRegisteredV1},
    "member-updated": {MemberUpdatedV1.EVENT_TYPE: MemberUpdatedV1},
}
