"""`alumni audit member MEMBER_ID`: every fact about one member across all topics, in time order.

Straight from the log (every platform topic read from its first record kept, no
consumer group): what membership registered and updated, every consent fact with
its evidence (source, method, notice), each newsletter sent to her with the consent
fact it relied on, bounces, opens and clicks, mail asked for her, volunteer offers,
her event registrations (with the event's title), and her erasure.

Graduations: FS's `graduated` records are keyed by the student number, which the
member facts carry sealed, so they cannot be matched by it without her key.
Membership's facts name the FS events her programmes came from
(`graduated_event_ids`, usn_schemas.member), and those link them. After her erasure
membership deletes the `graduated` records it applied from the broker, so none
are left to link.

Nothing personal is printed: only each fact's non-personal fields (ids,
programme codes, states, evidence); sealed fields are reported as sealed, or as
erased (unreadable for good) once she was erased. So after erasure the audit shows
only anonymous facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any

from aiokafka import TopicPartition

from alumni_kit.topics import PLATFORM_TOPICS
from usn_tools.alumni.checking import Checked, check, contracts_of, read
from usn_tools.alumni.output import iso_ms, table, write_lines
from usn_tools.alumni.reading import Span, existing_topics, read_spans, reader, topic_partitions, whole

# Topics keyed by the member id (their facts are hers when the key is her id).
KEYED_BY_MEMBER = {
    "member-registered",
    "member-updated",
    "member-erased",
    "consent-given",
    "consent-withdrawn",
    "volunteer-offered",
    "volunteer-withdrawn",
    "transactional-mail-requested",
}
EVENT_FACTS = {"event-published", "event-updated", "event-cancelled"}  # read for the events' titles
SKIPPED = {"campaigns", "campaign-status"}  # about campaigns, never about one member
TOPICS = [t.name for t in PLATFORM_TOPICS if not t.name.endswith(".dlq") and t.name not in SKIPPED]

# The non-personal fields each topic's facts are shown with (never a name, address,
# student number, text or link).
SHOWN: dict[str, tuple[str, ...]] = {
    "graduated": ("programme_code", "degree_level", "faculty", "campus", "graduation_date"),
    "member-registered": ("status", "faculties", "graduated_event_ids"),
    "member-updated": ("changed", "status", "faculties", "graduated_event_ids"),
    "member-erased": ("requested_by", "erased_at"),
    "consent-given": (
        "fact_id",
        "channel",
        "purpose",
        "sequence",
        "source",
        "method",
        "notice_version",
        "notice_sha256",
        "recorded_at",
    ),
    "newsletter-sent": ("campaign_id", "faculty", "purpose", "message_id", "consent_fact_id", "sent_at"),
    "email-bounced": ("campaign_id", "kind", "status", "suppressed", "bounced_at"),
    "email-opened": ("campaign_id", "at"),
    "email-clicked": ("campaign_id", "url", "at"),
    "transactional-mail-requested": ("kind", "language", "expires_at"),
    "volunteer-offered": ("offer_type", "faculties", "sequence"),
    "registration": ("event_id", "registration_id", "status", "waitlist_position", "offer_expires_at", "reason"),
}
SHOWN["consent-withdrawn"] = SHOWN["consent-given"]
SHOWN["volunteer-withdrawn"] = SHOWN["volunteer-offered"]
LABELS = {
    "graduated": "graduated (FS)",
    "member-registered": "registered",
    "member-updated": "updated",
    "member-erased": "erased",
    "consent-given": "consent given",
    "consent-withdrawn": "consent withdrawn",
    "newsletter-sent": "newsletter sent",
    "email-bounced": "e-mail bounced",
    "email-opened": "e-mail opened",
    "email-clicked": "link clicked",
    "transactional-mail-requested": "mail requested",
    "volunteer-offered": "volunteer offer",
    "volunteer-withdrawn": "volunteer offer withdrawn",
}


@dataclass(frozen=True)
class Fact:
    time: str
    topic: str
    partition: int
    offset: int
    timestamp: str
    event_type: str
    event_id: str
    fact: str
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


async def audit_member(bootstrap: str, prefix: str, member_id: str, show_progress: bool | None = None) -> list[Fact]:
    existing = await existing_topics(bootstrap)
    found = await topic_partitions(bootstrap, [prefix + name for name in TOPICS if prefix + name in existing])
    async with reader(bootstrap) as consumer:
        spans: dict[TopicPartition, Span] = {}
        for partitions in found.values():
            spans |= await whole(consumer, partitions)
        records = await read_spans(consumer, spans, "audit", show_progress)
    items = [check(read(r), contracts_of(r.topic, prefix)) for r in records]
    facts = [(i.record.topic.removeprefix(prefix), i) for i in items if i.valid and i.event is not None]
    return facts_about(member_id, facts)


def facts_about(member_id: str, facts: list[tuple[str, Checked]]) -> list[Fact]:
    """Her facts among all `facts` (topic name, checked record), in time order."""
    hers = [(t, i) for t, i in facts if _is_hers(member_id, t, i)]
    linked = {
        g
        for t, i in hers
        if t in ("member-registered", "member-updated")
        for g in _data(i).get("graduated_event_ids") or []
    }
    graduations = [(t, i) for t, i in facts if t == "graduated" and _event(i).get("id") in linked]
    erased = any(t == "member-erased" for t, _ in hers)
    consents = {str(_data(i).get("fact_id")): i for t, i in facts if t in ("consent-given", "consent-withdrawn")}
    titles = {
        str(_data(i).get("event_id")): _data(i).get("definition", {}).get("title") for t, i in facts if t in EVENT_FACTS
    }
    out = [_fact(t, i, erased, consents, titles) for t, i in graduations + hers]
    return sorted(out, key=lambda f: (f.time, f.timestamp, f.topic, f.partition, f.offset))


def _event(item: Checked) -> dict[str, Any]:
    return item.event or {}


def _data(item: Checked) -> dict[str, Any]:
    data = _event(item).get("data")
    return data if isinstance(data, dict) else {}


def _is_hers(member_id: str, topic: str, item: Checked) -> bool:
    if topic in ("graduated", *EVENT_FACTS):
        return False
    if topic in KEYED_BY_MEMBER and item.record.key == member_id.encode():
        return True
    return _data(item).get("member_id") == member_id


def _fact(topic: str, item: Checked, erased: bool, consents: dict[str, Checked], titles: dict[str, Any]) -> Fact:
    data, event = _data(item), _event(item)
    kind = "registration" if topic.startswith("event-") else topic
    details = {k: data[k] for k in SHOWN.get(kind, ()) if data.get(k) is not None}
    if kind == "registration":
        details["event_title"] = titles.get(str(data.get("event_id")))
    if topic == "newsletter-sent":
        details["relied_on"] = _consent_relied_on(str(data.get("consent_fact_id")), consents)
    if item.sealed:
        details["personal_data"] = "erased (unreadable)" if erased else "sealed (not shown)"
    label = LABELS.get(topic) or topic.replace("-", " ")
    return Fact(
        time=str(event.get("time", "")),
        topic=topic,
        partition=item.record.partition,
        offset=item.record.offset,
        timestamp=iso_ms(item.record.timestamp),
        event_type=str(event.get("type", "")),
        event_id=str(event.get("id", "")),
        fact=label,
        details=details,
    )


def _consent_relied_on(fact_id: str, consents: dict[str, Checked]) -> dict[str, Any]:
    """The consent fact a send relied on, as the log has it (or that it is not there)."""
    found = consents.get(fact_id)
    if found is None:
        return {"fact_id": fact_id, "found": False}
    data = _data(found)
    keep = ("fact_id", "state", "channel", "purpose", "sequence", "source", "method", "notice_version", "recorded_at")
    return {"found": True, **{k: data[k] for k in keep if data.get(k) is not None}}


def print_table(member_id: str, facts: list[Fact], out: IO[str]) -> None:
    rows = [[f.time[:19].replace("T", " "), f.topic, f.fact, _flat(f.details)] for f in facts]
    table(rows, ["TIME (UTC)", "TOPIC", "FACT", "DETAILS"], out)
    topics = len({f.topic for f in facts})
    out.write(f"\n{len(facts)} facts about member {member_id} on {topics} topics; personal data is not shown.\n")
    if any(f.topic == "member-erased" for f in facts):
        out.write("She was erased: her sealed fields can no longer be opened; only anonymous facts remain.\n")


def print_json(facts: list[Fact], out: IO[str]) -> None:
    write_lines((f.as_dict() for f in facts), out)


def _flat(details: dict[str, Any]) -> str:
    parts = []
    for key in sorted(details):
        value = details[key]
        if isinstance(value, dict):
            value = "{" + _flat(value) + "}"
        elif isinstance(value, list):
            value = ",".join(str(v) for v in value)
        parts.append(f"{key}={value}")
    return " ".join(parts)
