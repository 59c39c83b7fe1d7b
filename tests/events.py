"""The one factory of test events: CloudEvents as the platform's producers (or FS, or
a communications tool) publish them, as JSON-ready dicts for a plain Kafka client.

Tests and benchmarks build every event here, so the envelope is written once; each
builder takes what varies and fills the rest with plausible Norwegian values.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
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
