"""Contracts consent produces: `consent-given`, `consent-withdrawn` (key = member id).

Each carries one ledger fact. `sequence` (also in the envelope) is per member
and strictly increasing across both topics: a consumer keeps, per member ×
channel × purpose, the fact with the highest sequence it has seen, so facts
that arrive out of order (two topics, replays) still end in the right state.
The event id is the fact id, which the mailer records as the consent a send
relied on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from usn_schemas.envelope import MAX_BIGINT, CloudEvent
from usn_schemas.ids import MemberId

CONSENT_GIVEN_V1 = "no.usn.alumni.consent-given.v1"
CONSENT_WITHDRAWN_V1 = "no.usn.alumni.consent-withdrawn.v1"

Channel = Literal["email", "sms"]
CHANNELS: tuple[Channel, ...] = ("email", "sms")
ConsentState = Literal["given", "withdrawn"]
# Purposes are configurable (consent settings); the contract only fixes their shape.
Purpose = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,39}$")]
Source = Literal["preference-centre", "one-click-unsubscribe", "import", "staff"]


class ConsentFact(BaseModel):
    """One entry of the append-only consent ledger."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    fact_id: str
    member_id: MemberId
    sequence: int = Field(ge=1, le=MAX_BIGINT)
    channel: Channel
    purpose: Purpose
    state: ConsentState
    recorded_at: datetime
    source: Source
    # How it was obtained, e.g. "double-opt-in", "preference-centre", "rfc8058-one-click".
    method: str = Field(min_length=1, max_length=200)
    notice_version: str | None = None
    notice_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    # Staff and import reasons are not published: free text may name people, and a
    # topic cannot forget. The ledger keeps them (until erasure); the proof API shows them.


class ConsentGivenV1(CloudEvent):
    EVENT_TYPE: ClassVar[str] = CONSENT_GIVEN_V1
    type: Literal["no.usn.alumni.consent-given.v1"]
    data: ConsentFact


class ConsentWithdrawnV1(CloudEvent):
    EVENT_TYPE: ClassVar[str] = CONSENT_WITHDRAWN_V1
    type: Literal["no.usn.alumni.consent-withdrawn.v1"]
    data: ConsentFact
