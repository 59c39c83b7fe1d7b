"""The one factory of test events: CloudEvents as the platform's producers (or FS, or
a communications tool) publish them, as JSON-ready dicts for a plain Kafka client.

Tests and benchmarks build every event here, so the envelope is written once; each
builder takes what varies and fills the rest with plausible Norwegian values.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from usn_schemas.ids import new_id

MEMBERSHIP, CONSENT, FS, COMMS_TOOL = "/usn-alumni/membership", "/usn-alumni/consent", "/fs", "/usn/comms-tool"


def cloud_event(
    event_type: str,
    subject: str,
    data: dict[str, Any],
    *,
    source: str,
    event_id: str | None = None,
    time: str | None = None,
    sequence: int | None = None,
) -> dict[str, Any]:
    """A structured-mode CloudEvent of `event_type` (a fresh id and the current time unless given)."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id or new_id(),
        "source": source,
        "type": event_type,
        "time": time or datetime.now(UTC).isoformat(),
        "subject": subject,
        "datacontenttype": "application/json",
    }
    if sequence is not None:
        event["sequence"] = sequence
    return {**event, "data": data}


def graduation(
    event_id: str,
    sn: str,
    code: str = "BSL",
    level: str = "bachelor",
    day: str = "2024-06-14",
    faculty: str = "TNM",
    **extra: Any,
) -> dict[str, Any]:
    """`graduated` v1 as FS publishes it (in the clear), at a fixed time."""
    data = {
        "student_number": sn,
        "given_name": "Åse",
        "family_name": "Ødegård-Li",
        "programme_code": code,
        "faculty": faculty,
        "degree_level": level,
        "graduation_date": day,
        **extra,
    }
    return cloud_event("no.usn.fs.graduated.v1", sn, data, source=FS, event_id=event_id, time="2025-01-01T00:00:00Z")


def member_registered(
    member_id: str | None = None,
    email: str | None = "kari.nordmann@example.no",
    faculty: str = "TNM",
    given_name: str = "Kari",
    time: str | None = None,
    family_name: str = "Nordmann",
    student_number: str | None = None,
) -> dict[str, Any]:
    """`member-registered` v1 as membership publishes it (unsealed: tests' consumers have no key to ask)."""
    member_id = member_id or str(uuid.uuid4())
    data = {
        "member_id": member_id,
        "student_number": student_number or str(uuid.uuid4().int)[:6],
        "given_name": given_name,
        "family_name": family_name,
        "email": email,
        "status": "alumni",
        "faculties": [faculty],
        "programmes": [
            {"programme_code": "BSL", "faculty": faculty, "degree_level": "bachelor", "graduation_date": "2024-06-14"}
        ],
    }
    return cloud_event("no.usn.alumni.member-registered.v1", member_id, data, source=MEMBERSHIP, time=time)


def member_erased(member_id: str) -> dict[str, Any]:
    data = {"member_id": member_id, "erased_at": datetime.now(UTC).isoformat(), "requested_by": "member"}
    return cloud_event("no.usn.alumni.member-erased.v1", member_id, data, source=MEMBERSHIP)


def consent_fact(member_id: str, sequence: int, state: str, purpose: str = "newsletter") -> dict[str, Any]:
    """`consent-given` or `consent-withdrawn` (`state`) for e-mail, as the consent service publishes it."""
    fact_id, now = str(uuid.uuid4()), datetime.now(UTC).isoformat()
    data = {
        "fact_id": fact_id,
        "member_id": member_id,
        "sequence": sequence,
        "channel": "email",
        "purpose": purpose,
        "state": state,
        "recorded_at": now,
        "source": "preference-centre",
        "method": "double-opt-in",
    }
    event_type = f"no.usn.alumni.consent-{state}.v1"
    return cloud_event(event_type, member_id, data, source=CONSENT, event_id=fact_id, time=now, sequence=sequence)


def campaign(campaign_id: str, faculty: str = "TNM", purpose: str = "newsletter", **data: Any) -> dict[str, Any]:
    """`campaign-requested` v1 as a communications tool publishes it on `campaigns`."""
    request = {
        "campaign_id": campaign_id,
        "requested_by": "ak@usn.no",
        "faculty": faculty,
        "purpose": purpose,
        "subject": "Nytt fra fakultetet – æøå",
        "body_markdown": "Hei {{ given_name }}!\n\n[Julemøtet](https://www.usn.no/alumni/jul) er 12. desember.",
        "language": "nb",
        **data,
    }
    return cloud_event("no.usn.alumni.campaign-requested.v1", campaign_id, request, source=COMMS_TOOL)


def event_definition(
    organiser: str = "TNM", capacity: int = 100, hours_ahead: float = 24 * 14, **fields: Any
) -> dict[str, Any]:
    """The body of `POST /events` (the events service): an event `hours_ahead` from now,
    two hours long, registration open until a day before it starts."""
    starts = datetime.now(UTC) + timedelta(hours=hours_ahead)
    body: dict[str, Any] = {
        "title": "Alumnikveld på Campus Kongsberg – æøå",
        "description": "Foredrag og mingling.",
        "organiser": organiser,
        "kind": "social",
        "campus": "Kongsberg",
        "address": "Hasbergs vei 36, 3616 Kongsberg",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "capacity": capacity,
        "registration_deadline": (starts - timedelta(hours=24)).isoformat(),
        "audience": {"faculties": [organiser]} if organiser != "USN" else {},
    }
    return {**body, **fields}


# --- what analytics counts (the mailer's, events' and membership's facts, and the EVU system's) ---

MAILER, EVENTS, EVU = "/usn-alumni/mailer", "/usn-alumni/events", "/evu"
_REGISTRATION_TYPES = {
    "registered": "event-registered",
    "waitlisted": "event-waitlisted",
    "offered": "event-offer-made",
    "expired": "event-offer-expired",
    "cancelled": "event-registration-cancelled",
    "attended": "event-attended",
}


def member_updated(
    member_id: str, time: str, faculty: str = "TNM", status: str = "alumni", code: str = "BSL", year: int = 2024
) -> dict[str, Any]:
    """`member-updated` v1 (unsealed, as member_registered), a full snapshot at `time`."""
    data = {
        "member_id": member_id,
        "student_number": "100" + member_id[:3],
        "given_name": "Kari",
        "family_name": "Nordmann",
        "status": status,
        "faculties": [faculty],
        "programmes": [
            {"programme_code": code, "faculty": faculty, "degree_level": "master", "graduation_date": f"{year}-06-14"}
        ],
        "changed": ["programmes"],
    }
    return cloud_event("no.usn.alumni.member-updated.v1", member_id, data, source=MEMBERSHIP, time=time)


def newsletter_sent(
    campaign_id: str, member_id: str, faculty: str = "TNM", sent_at: str | None = None
) -> dict[str, Any]:
    data = {
        "campaign_id": campaign_id,
        "member_id": member_id,
        "faculty": faculty,
        "purpose": "newsletter",
        "message_id": f"<{new_id()}@alumni.usn.no>",
        "consent_fact_id": new_id(),
        "sent_at": sent_at or datetime.now(UTC).isoformat(),
    }
    return cloud_event("no.usn.alumni.newsletter-sent.v1", member_id, data, source=MAILER)


def email_engagement(kind: str, campaign_id: str, member_id: str, at: str | None = None) -> dict[str, Any]:
    """`email-opened` or `email-clicked` (`kind` = opened | clicked)."""
    data = {"campaign_id": campaign_id, "member_id": member_id, "at": at or datetime.now(UTC).isoformat()}
    if kind == "clicked":
        data["url"] = "https://www.usn.no/alumni"
    return cloud_event(f"no.usn.alumni.email-{kind}.v1", member_id, data, source=MAILER)


def campaign_status(
    campaign_id: str, status: str, at: str, sent: int = 0, skipped: dict[str, int] | None = None, faculty: str = "TNM"
) -> dict[str, Any]:
    data = {
        "campaign_id": campaign_id,
        "faculty": faculty,
        "purpose": "newsletter",
        "status": status,
        "recipients": sent + sum((skipped or {}).values()),
        "sent": sent,
        "skipped": skipped or {},
        "at": at,
    }
    return cloud_event("no.usn.alumni.campaign-status.v1", campaign_id, data, source=MAILER)


def volunteer_fact(member_id: str, sequence: int, offer_type: str = "mentor", offered: bool = True) -> dict[str, Any]:
    data = {
        "member_id": member_id,
        "sequence": sequence,
        "offer_type": offer_type,
        "faculties": ["TNM"],
        "programme_codes": ["BSL"],
        "recorded_at": datetime.now(UTC).isoformat(),
    }
    kind = "offered" if offered else "withdrawn"
    return cloud_event(f"no.usn.alumni.volunteer-{kind}.v1", member_id, data, source=MEMBERSHIP, sequence=sequence)


def event_fact(
    event_id: str, status: str, sequence: int, organiser: str = "TNM", kind: str = "social"
) -> dict[str, Any]:
    """`event-published` / `event-cancelled` (`status`) or `event-updated` (status "updated")."""
    topic = {"published": "event-published", "cancelled": "event-cancelled", "updated": "event-updated"}[status]
    definition = event_definition(organiser, kind=kind)
    data = {
        "event_id": event_id,
        "status": "published" if status == "updated" else status,
        "definition": definition,
        "at": datetime.now(UTC).isoformat(),
    }
    return cloud_event(f"no.usn.alumni.{topic}.v1", event_id, data, source=EVENTS, sequence=sequence)


def registration_fact(
    event_id: str, registration_id: str, member_id: str | None, status: str, sequence: int
) -> dict[str, Any]:
    """The registration fact of `status` (registered, waitlisted, offered, expired, cancelled, attended)."""
    data: dict[str, Any] = {
        "event_id": event_id,
        "registration_id": registration_id,
        "member_id": member_id,
        "status": status,
        "at": datetime.now(UTC).isoformat(),
    }
    if status == "waitlisted":
        data["waitlist_position"] = 1
    topic = _REGISTRATION_TYPES[status]
    return cloud_event(f"no.usn.alumni.{topic}.v1", event_id, data, source=EVENTS, sequence=sequence)


def evu_enrolled(enrolment_id: str, sn: str, course_code: str = "EVU-LED4001", faculty: str = "HH") -> dict[str, Any]:
    """`evu-enrolled` v1 as the EVU system publishes it (in the clear)."""
    data = {
        "enrolment_id": enrolment_id,
        "student_number": sn,
        "course_code": course_code,
        "faculty": faculty,
        "price_nok": 20000,
        "enrolled_at": datetime.now(UTC).isoformat(),
    }
    return cloud_event("no.usn.evu.enrolled.v1", sn, data, source=EVU)
