"""Which contracts travel on which topic: the one place consumers look them up."""

from __future__ import annotations

from usn_schemas.campaign import (
    CampaignRequestedV1,
    CampaignStatusV1,
    EmailBouncedV1,
    EmailClickedV1,
    EmailOpenedV1,
    NewsletterSentV1,
)
from usn_schemas.consent import ConsentGivenV1, ConsentWithdrawnV1
from usn_schemas.envelope import CloudEvent
from usn_schemas.events import (
    EventAttendedV1,
    EventCancelledV1,
    EventOfferExpiredV1,
    EventOfferMadeV1,
    EventPublishedV1,
    EventRegisteredV1,
    EventRegistrationCancelledV1,
    EventUpdatedV1,
    EventWaitlistedV1,
)
from usn_schemas.evu import EvuEnrolledV1
from usn_schemas.graduated import GraduatedV1
from usn_schemas.mail import TransactionalMailRequestedV1
from usn_schemas.member import MemberErasedV1, MemberRegisteredV1, MemberUpdatedV1
from usn_schemas.volunteer import VolunteerOfferedV1, VolunteerWithdrawnV1

TOPIC_CONTRACTS: dict[str, dict[str, type[CloudEvent]]] = {
    "graduated": {GraduatedV1.EVENT_TYPE: GraduatedV1},
    "member-registered": {MemberRegisteredV1.EVENT_TYPE: MemberRegisteredV1},
    "member-updated": {MemberUpdatedV1.EVENT_TYPE: MemberUpdatedV1},
    "member-erased": {MemberErasedV1.EVENT_TYPE: MemberErasedV1},
    "consent-given": {ConsentGivenV1.EVENT_TYPE: ConsentGivenV1},
    "consent-withdrawn": {ConsentWithdrawnV1.EVENT_TYPE: ConsentWithdrawnV1},
    "transactional-mail-requested": {TransactionalMailRequestedV1.EVENT_TYPE: TransactionalMailRequestedV1},
    "campaigns": {CampaignRequestedV1.EVENT_TYPE: CampaignRequestedV1},
    "newsletter-sent": {NewsletterSentV1.EVENT_TYPE: NewsletterSentV1},
    "email-bounced": {EmailBouncedV1.EVENT_TYPE: EmailBouncedV1},
    "email-opened": {EmailOpenedV1.EVENT_TYPE: EmailOpenedV1},
    "email-clicked": {EmailClickedV1.EVENT_TYPE: EmailClickedV1},
    "campaign-status": {CampaignStatusV1.EVENT_TYPE: CampaignStatusV1},
    "volunteer-offered": {VolunteerOfferedV1.EVENT_TYPE: VolunteerOfferedV1},
    "volunteer-withdrawn": {VolunteerWithdrawnV1.EVENT_TYPE: VolunteerWithdrawnV1},
    "event-published": {EventPublishedV1.EVENT_TYPE: EventPublishedV1},
    "event-updated": {EventUpdatedV1.EVENT_TYPE: EventUpdatedV1},
    "event-cancelled": {EventCancelledV1.EVENT_TYPE: EventCancelledV1},
    "event-registered": {EventRegisteredV1.EVENT_TYPE: EventRegisteredV1},
    "event-waitlisted": {EventWaitlistedV1.EVENT_TYPE: EventWaitlistedV1},
    "event-offer-made": {EventOfferMadeV1.EVENT_TYPE: EventOfferMadeV1},
    "event-offer-expired": {EventOfferExpiredV1.EVENT_TYPE: EventOfferExpiredV1},
    "event-registration-cancelled": {EventRegistrationCancelledV1.EVENT_TYPE: EventRegistrationCancelledV1},
    "event-attended": {EventAttendedV1.EVENT_TYPE: EventAttendedV1},
    "evu-enrolled": {EvuEnrolledV1.EVENT_TYPE: EvuEnrolledV1},
}
