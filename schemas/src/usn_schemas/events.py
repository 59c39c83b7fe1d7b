"""Contracts the events service produces (key = the event id on every topic).

Event facts: `event-published`, `event-updated`, `event-cancelled` carry the event
as it now stands. Registration facts: `event-registered`, `event-waitlisted`,
`event-offer-made`, `event-offer-expired`, `event-registration-cancelled`,
`event-attended` carry one registration.

Ordering: every fact about one event is keyed by its event id, so all of them stay
in one partition per topic; across topics, the envelope's `sequence` is per event
and strictly increasing (the service assigns it under the event's row lock), so a
consumer that keeps the highest sequence per registration or event ends in the
right state whatever order the topics are read in.

Member ids are pseudonymous and travel in the clear, as on the consent topics; a
registration of an erased member has none (`member_id` null).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field

from usn_schemas.campaign import Audience, Sender
from usn_schemas.envelope import CloudEvent
from usn_schemas.ids import MemberId

EVENT_PUBLISHED_V1 = "no.usn.alumni.event-published.v1"
EVENT_UPDATED_V1 = "no.usn.alumni.event-updated.v1"
EVENT_CANCELLED_V1 = "no.usn.alumni.event-cancelled.v1"
EVENT_REGISTERED_V1 = "no.usn.alumni.event-registered.v1"
EVENT_WAITLISTED_V1 = "no.usn.alumni.event-waitlisted.v1"
EVENT_OFFER_MADE_V1 = "no.usn.alumni.event-offer-made.v1"
EVENT_OFFER_EXPIRED_V1 = "no.usn.alumni.event-offer-expired.v1"
EVENT_REGISTRATION_CANCELLED_V1 = "no.usn.alumni.event-registration-cancelled.v1"
EVENT_ATTENDED_V1 = "no.usn.alumni.event-attended.v1"

# Who organises it: USN (communications) or one faculty.
Organiser = Sender
EventKind = Literal["conference", "seminar", "social", "career", "evu-info", "webinar"]
EVENT_KINDS: tuple[EventKind, ...] = ("conference", "seminar", "social", "career", "evu-info", "webinar")
EventStatus = Literal["draft", "published", "cancelled"]
Promotion = Literal["offer", "automatic"]
Text = Annotated[str, Field(min_length=1, max_length=300)]
EventId = Annotated[str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]


class Minimum(BaseModel):
    """Fewest registrations for the event to go ahead, decided on `decide_by`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    registrations: int = Field(ge=1, le=100_000)
    decide_by: AwareDatetime


class EventDefinition(BaseModel):
    """An event as staff define it (the body of `POST /events`, and what event facts carry).

    Only single-field rules are here; the rules between fields (end after start, a
    deadline before the start, a capacity of at least one) live in the events service
    (events/rules.py), which answers 422 naming the field.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: Text
    # Markdown, in Norwegian or English.
    description: str = Field("", max_length=20_000)
    organiser: Organiser
    # Where the organiser is told when the turnout forecast falls below the minimum: a role's
    # (functional) address such as hh-alumni@usn.no, never a person's, since it travels in
    # the event facts unsealed. Optional (added in v1); without it the service's per-organiser
    # setting (EVENTS_ORGANISER_CONTACTS) is used.
    organiser_contact: EmailStr | None = Field(None, max_length=254)
    kind: EventKind
    campus: Text | None = None
    address: Text | None = None
    online_url: str | None = Field(None, max_length=500, pattern=r"^https://[^\s]+$")
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    capacity: int = Field(le=100_000)
    # Default: the start.
    registration_deadline: AwareDatetime | None = None
    minimum: Minimum | None = None
    audience: Audience = Audience()
    # How long an offer from the waiting list holds a seat (fractions allowed:
    # 0.5 is half an hour); never past the registration deadline or the start.
    offer_hours: float = Field(48, gt=0, le=24 * 30)
    # "offer": a freed seat is offered to the first on the list for offer_hours;
    # "automatic": she gets it at once (plain promotion), still never after the deadline.
    promotion: Promotion = "offer"


class EventFact(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: EventId
    status: EventStatus
    definition: EventDefinition
    at: AwareDatetime


class EventPublishedV1(CloudEvent):
    EVENT_TYPE: ClassVar[str] = EVENT_PUBLISHED_V1
    type: Literal["no.usn.alumni.event-published.v1"]
    data: EventFact


class EventUpdatedV1(CloudEvent):
    EVENT_TYPE: ClassVar[str] = EVENT_UPDATED_V1
    type: Literal["no.usn.alumni.event-updated.v1"]
    data: EventFact


class EventCancelledV1(CloudEvent):
    EVENT_TYPE: ClassVar[str] = EVENT_CANCELLED_V1
    type: Literal["no.usn.alumni.event-cancelled.v1"]
    data: EventFact


RegistrationStatus = Literal["registered", "waitlisted", "offered", "cancelled", "expired", "attended"]


class RegistrationFact(BaseModel):
    """One registration as it now stands."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: EventId
    registration_id: EventId
    # None once she is erased: the registration stays (counts), the link to her goes.
    member_id: MemberId | None = None
    status: RegistrationStatus
    # 1 = next in line; set while she waits.
    waitlist_position: int | None = Field(None, ge=1)
    # Set on an offer: until when the seat is held for her.
    offer_expires_at: AwareDatetime | None = None
    # Why a registration ended: "member", "declined", "erased", "expired".
    reason: str | None = Field(None, max_length=40)
    at: AwareDatetime


class EventRegisteredV1(CloudEvent):
    """A seat is hers: registered directly, or by accepting an offer."""

    EVENT_TYPE: ClassVar[str] = EVENT_REGISTERED_V1
    type: Literal["no.usn.alumni.event-registered.v1"]
    data: RegistrationFact


class EventWaitlistedV1(CloudEvent):
    EVENT_TYPE: ClassVar[str] = EVENT_WAITLISTED_V1
    type: Literal["no.usn.alumni.event-waitlisted.v1"]
    data: RegistrationFact


class EventOfferMadeV1(CloudEvent):
    EVENT_TYPE: ClassVar[str] = EVENT_OFFER_MADE_V1
    type: Literal["no.usn.alumni.event-offer-made.v1"]
    data: RegistrationFact


class EventOfferExpiredV1(CloudEvent):
    EVENT_TYPE: ClassVar[str] = EVENT_OFFER_EXPIRED_V1
    type: Literal["no.usn.alumni.event-offer-expired.v1"]
    data: RegistrationFact


class EventRegistrationCancelledV1(CloudEvent):
    """She left: cancelled her seat, left the waiting list, declined an offer, or was erased."""

    EVENT_TYPE: ClassVar[str] = EVENT_REGISTRATION_CANCELLED_V1
    type: Literal["no.usn.alumni.event-registration-cancelled.v1"]
    data: RegistrationFact


class EventAttendedV1(CloudEvent):
    EVENT_TYPE: ClassVar[str] = EVENT_ATTENDED_V1
    type: Literal["no.usn.alumni.event-attended.v1"]
    data: RegistrationFact
