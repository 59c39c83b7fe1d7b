"""What analytics consumes: every topic of the platform with a contract (descriptions for AsyncAPI)."""

from __future__ import annotations

from usn_schemas.registry import TOPIC_CONTRACTS

_WHY = {
    "member-registered": "Members by faculty, programme, degree level, year, campus, status; growth.",
    "member-updated": "The member's newest snapshot (a second degree, a new status).",
    "member-erased": "Her rows lose her id (anonymous counts stay); her member row goes.",
    "consent-given": "Reach: consent coverage per channel and purpose over time.",
    "consent-withdrawn": "Reach: consent coverage per channel and purpose over time.",
    "campaigns": "Campaigns requested (sender faculty, purpose).",
    "newsletter-sent": "Deliveries per campaign and member.",
    "email-bounced": "Bounces per campaign.",
    "email-opened": "Unique opens per campaign (communication engagement).",
    "email-clicked": "Unique clicks per campaign (communication engagement).",
    "campaign-status": "Sent, skipped by reason, bounced, failed per campaign.",
    "volunteer-offered": "Volunteer offers by type and faculty (volunteer engagement).",
    "volunteer-withdrawn": "Volunteer offers by type and faculty (volunteer engagement).",
    "event-published": "Events by organiser and kind.",
    "event-updated": "Events as they now stand.",
    "event-cancelled": "Cancelled events.",
    "event-registered": "Registrations.",
    "event-waitlisted": "The waiting list.",
    "event-offer-made": "Offers of freed seats.",
    "event-offer-expired": "Offers that ran out.",
    "event-registration-cancelled": "Cancelled registrations.",
    "event-attended": "Attendance (experiential engagement); no-shows are registered minus attended after the end.",
    "evu-enrolled": "EVU enrolments (the strategy's continuing-education revenue).",
}

# `graduated` is FS's raw feed: membership's member facts are what counts, and its
# records are deleted at erasure; transactional mail carries no figure.
CONSUMED: dict[str, str] = {topic: _WHY[topic] for topic in TOPIC_CONTRACTS if topic in _WHY}
