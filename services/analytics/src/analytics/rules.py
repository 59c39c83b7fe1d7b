"""Pure projection rules: events into rows, rows merged, erasure; no I/O.

Every table's merge is commutative, associative and idempotent (newest by the
per-entity sequence or time, earliest timestamp per stage, a fixed tie-break),
so a batch applied twice, batches in another order, or the topics read in any
interleaving end in the same rows. `Projection` holds rows in dicts: the whole
state in the property test's recomputation, or only the rows one batch touches
when `analytics.store` loads them from a generation and writes them back.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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
from usn_schemas.events import EventFact, RegistrationFact
from usn_schemas.evu import EvuEnrolledV1
from usn_schemas.member import MemberErasedV1, MemberRegisteredV1, MemberSnapshot, MemberUpdatedV1
from usn_schemas.volunteer import VolunteerOfferedV1, VolunteerWithdrawnV1

Row = dict[str, Any]
Key = tuple[Any, ...]
Merge = Callable[[Row | None, Row], Row]


@dataclass(frozen=True)
class Weights:
    """What each fact scores in its CASE engagement mode (AnalyticsSettings.weight_*)."""

    opened: float = 1.0
    clicked: float = 2.0
    attended: float = 5.0
    volunteer: float = 5.0


def anonymous_key(pepper: bytes, member_id: str) -> str:
    """The key an erased member's rows carry instead of her id: the same for every row of
    hers (counts per member stay right), not her id, and never published or shown.

    An HMAC under the secret pepper (ANALYTICS_ERASURE_PEPPER), not a plain hash: whoever
    still holds her id (the events service, an old export) cannot recompute it and so
    cannot find her rows among the anonymous ones."""
    return "erased-" + hmac.new(pepper, member_id.encode(), hashlib.sha256).hexdigest()[:32]


def person_key(student_number: str) -> str:
    """A keyed hash of a student number: joins EVU enrolments with members without storing it."""
    return hashlib.sha256(b"usn-alumni-analytics/person/" + student_number.encode()).hexdigest()[:32]


def _earliest(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else min(a, b)


def _newest(old: Row | None, new: Row, rank: Callable[[Row], Any]) -> Row:
    return new if old is None or rank(new) > rank(old) else old


def _merge_member(old: Row | None, new: Row) -> Row:
    out = dict(_newest(old, new, lambda r: (r["fact_time"], r["fact_id"])))
    if old is not None:
        out["registered_at"] = min(old["registered_at"], new["registered_at"])
    return out


def _merge_identical(old: Row | None, new: Row) -> Row:
    # The same key twice is the same fact redelivered; a fixed choice if it ever differs.
    return new if old is None else max(old, new, key=lambda r: json.dumps(r, default=str, sort_keys=True))


def _merge_campaign(old: Row | None, new: Row) -> Row:
    if old is None:
        return new
    status_rank: Callable[[Row], Any] = lambda r: (  # noqa: E731
        r["status_at"] is not None,
        r["status_at"] or datetime.min,
        r["sent"] + r["bounced"] + r["failed"],
        r["status"] or "",
    )
    out = dict(_newest(old, new, status_rank))
    for name in ("faculty", "purpose"):
        out[name] = old[name] if old[name] is not None else new[name]
    out["requested_at"] = _earliest(old["requested_at"], new["requested_at"])
    return out


def _merge_delivery(old: Row | None, new: Row) -> Row:
    if old is None:
        return new
    out = dict(old)
    for name in ("faculty", "purpose"):
        out[name] = old[name] if old[name] is not None else new[name]
    for name in ("sent_at", "opened_at", "clicked_at"):
        out[name] = _earliest(old[name], new[name])
    return out


def _merge_event(old: Row | None, new: Row) -> Row:
    out = dict(_newest(old, new, lambda r: r["sequence"]))
    if old is not None:
        for name in ("published_at", "cancelled_at"):
            out[name] = _earliest(old[name], new[name])
    return out


_STAGES = ("registered_at", "waitlisted_at", "offered_at", "offer_expired_at", "cancelled_at", "attended_at")


def _merge_registration(old: Row | None, new: Row) -> Row:
    out = dict(_newest(old, new, lambda r: (r["sequence"], r["status"])))
    if old is not None:
        for name in _STAGES:
            out[name] = _earliest(old[name], new[name])
        # Once she is erased the events service publishes no member id: keep the (anonymous) one known.
        out["member_key"] = _max_key(old["member_key"], new["member_key"])
    return out


def _max_key(a: str | None, b: str | None) -> str | None:
    return b if a is None else a if b is None else max(a, b)


def _merge_volunteer(old: Row | None, new: Row) -> Row:
    return _newest(old, new, lambda r: (r["sequence"], r["state"]))


def _merge_engagement(old: Row | None, new: Row) -> Row:
    return new  # derived from a source row just merged: the newest derivation is the truth


@dataclass(frozen=True)
class Table:
    name: str
    key: tuple[str, ...]
    columns: tuple[str, ...]
    merge: Merge
    # Has a member_key column: re-keyed at her erasure (in the key or not).
    per_member: bool = False
    json_columns: tuple[str, ...] = ()

    def key_of(self, row: Row) -> Key:
        if len(self.key) == 1:  # most tables: no generator for one column
            return (row[self.key[0]],)
        return tuple(row[k] for k in self.key)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "members",
            ("member_key",),
            ("member_key", "status", "faculties", "programmes", "registered_at", "person_key", "fact_time", "fact_id"),
            _merge_member,
            per_member=True,
            json_columns=("programmes",),
        ),
        Table(
            "consent_facts",
            ("member_key", "channel", "purpose", "sequence"),
            ("member_key", "channel", "purpose", "sequence", "state", "recorded_at"),
            _merge_identical,
            per_member=True,
        ),
        Table(
            "campaigns",
            ("campaign_id",),
            (
                "campaign_id",
                "faculty",
                "purpose",
                "requested_at",
                "status",
                "status_at",
                "recipients",
                "sent",
                "skipped",
                "bounced",
                "failed",
            ),
            _merge_campaign,
            json_columns=("skipped",),
        ),
        Table(
            "deliveries",
            ("campaign_id", "member_key"),
            ("campaign_id", "member_key", "faculty", "purpose", "sent_at", "opened_at", "clicked_at"),
            _merge_delivery,
            per_member=True,
        ),
        Table(
            "bounces",
            ("bounce_id",),
            ("bounce_id", "campaign_id", "member_key", "kind", "bounced_at"),
            _merge_identical,
            per_member=True,
        ),
        Table(
            "events",
            ("event_id",),
            (
                "event_id",
                "organiser",
                "kind",
                "campus",
                "starts_at",
                "ends_at",
                "capacity",
                "status",
                "published_at",
                "cancelled_at",
                "sequence",
            ),
            _merge_event,
        ),
        Table(
            "registrations",
            ("registration_id",),
            ("registration_id", "event_id", "member_key", "status", "sequence", *_STAGES),
            _merge_registration,
            per_member=True,
        ),
        Table(
            "volunteer_offers",
            ("member_key", "offer_type"),
            ("member_key", "offer_type", "state", "sequence", "faculties", "recorded_at"),
            _merge_volunteer,
            per_member=True,
        ),
        Table(
            "evu_enrolments",
            ("enrolment_id",),
            ("enrolment_id", "person_key", "course_code", "faculty", "price_nok", "enrolled_at", "cancelled"),
            _merge_identical,
        ),
        Table(
            "engagement_facts",
            ("member_key", "source"),
            ("member_key", "source", "mode", "weight", "at"),
            _merge_engagement,
            per_member=True,
        ),
    )
}
PER_MEMBER = tuple(t for t in TABLES.values() if t.per_member)


# --- events into rows ----------------------------------------------------------------------


def _member_row(event: CloudEvent, snapshot: MemberSnapshot) -> Row:
    programmes = [
        {
            "programme_code": p.programme_code,
            "faculty": p.faculty,
            "campus": p.campus,
            "degree_level": p.degree_level,
            "graduation_year": p.graduation_date.year,
        }
        for p in snapshot.programmes
    ]
    programmes.sort(key=lambda p: json.dumps(p, sort_keys=True))
    return {
        "member_key": snapshot.member_id.lower(),
        "status": snapshot.status,
        "faculties": sorted(snapshot.faculties),
        "programmes": programmes,
        "registered_at": event.time,
        "person_key": None if snapshot.student_number is None else person_key(snapshot.student_number),
        "fact_time": event.time,
        "fact_id": event.id,
    }


def _event_row(fact: EventFact, sequence: int) -> Row:
    d = fact.definition
    return {
        "event_id": fact.event_id,
        "organiser": d.organiser,
        "kind": d.kind,
        "campus": d.campus,
        "starts_at": d.starts_at,
        "ends_at": d.ends_at,
        "capacity": d.capacity,
        "status": fact.status,
        "published_at": fact.at if fact.status == "published" else None,
        "cancelled_at": fact.at if fact.status == "cancelled" else None,
        "sequence": sequence,
    }


_STAGE_OF_STATUS = {
    "registered": "registered_at",
    "waitlisted": "waitlisted_at",
    "offered": "offered_at",
    "expired": "offer_expired_at",
    "cancelled": "cancelled_at",
    "attended": "attended_at",
}


def _registration_row(fact: RegistrationFact, sequence: int) -> Row:
    row: Row = {
        "registration_id": fact.registration_id,
        "event_id": fact.event_id,
        "member_key": None if fact.member_id is None else fact.member_id.lower(),
        "status": fact.status,
        "sequence": sequence,
        **{stage: None for stage in _STAGES},
    }
    row[_STAGE_OF_STATUS[fact.status]] = fact.at
    return row


def rows_of(event: CloudEvent) -> Iterator[tuple[str, Row]]:
    """The (table, row) pairs one event contributes (none for an event it does not count)."""
    if isinstance(event, MemberRegisteredV1 | MemberUpdatedV1):
        yield "members", _member_row(event, event.data)
    elif isinstance(event, ConsentGivenV1 | ConsentWithdrawnV1):
        f = event.data
        yield (
            "consent_facts",
            {
                "member_key": f.member_id.lower(),
                "channel": f.channel,
                "purpose": f.purpose,
                "sequence": f.sequence,
                "state": f.state,
                "recorded_at": f.recorded_at,
            },
        )
    elif isinstance(event, CampaignRequestedV1):
        c = event.data
        yield "campaigns", _campaign(c.campaign_id, c.faculty, c.purpose, requested_at=event.time)
    elif isinstance(event, CampaignStatusV1):
        s = event.data
        yield (
            "campaigns",
            {
                **_campaign(s.campaign_id, s.faculty, s.purpose),
                "status": s.status,
                "status_at": s.at,
                "recipients": s.recipients,
                "sent": s.sent,
                "skipped": dict(sorted(s.skipped.items())),
                "bounced": s.bounced,
                "failed": s.failed,
            },
        )
    elif isinstance(event, NewsletterSentV1):
        n = event.data
        yield (
            "deliveries",
            _delivery(n.campaign_id, n.member_id, faculty=n.faculty, purpose=n.purpose, sent_at=n.sent_at),
        )
    elif isinstance(event, EmailOpenedV1):
        yield "deliveries", _delivery(event.data.campaign_id, event.data.member_id, opened_at=event.data.at)
    elif isinstance(event, EmailClickedV1):
        # A click shows the message was read: it counts as an open too.
        at = event.data.at
        yield "deliveries", _delivery(event.data.campaign_id, event.data.member_id, opened_at=at, clicked_at=at)
    elif isinstance(event, EmailBouncedV1):
        b = event.data
        yield (
            "bounces",
            {
                "bounce_id": event.id,
                "campaign_id": b.campaign_id,
                "member_key": None if b.member_id is None else b.member_id.lower(),
                "kind": b.kind,
                "bounced_at": b.bounced_at,
            },
        )
    elif isinstance(event.data, EventFact):
        yield "events", _event_row(event.data, event.sequence or 0)
    elif isinstance(event.data, RegistrationFact):
        yield "registrations", _registration_row(event.data, event.sequence or 0)
    elif isinstance(event, VolunteerOfferedV1 | VolunteerWithdrawnV1):
        v = event.data
        yield (
            "volunteer_offers",
            {
                "member_key": v.member_id.lower(),
                "offer_type": v.offer_type,
                "state": "offered" if isinstance(event, VolunteerOfferedV1) else "withdrawn",
                "sequence": v.sequence,
                "faculties": sorted(v.faculties),
                "recorded_at": v.recorded_at,
            },
        )
    elif isinstance(event, EvuEnrolledV1):
        e = event.data
        yield (
            "evu_enrolments",
            {
                "enrolment_id": e.enrolment_id,
                "person_key": person_key(e.student_number),
                "course_code": e.course_code,
                "faculty": e.faculty,
                "price_nok": e.price_nok,
                "enrolled_at": e.enrolled_at,
                "cancelled": False,
            },
        )


def _campaign(campaign_id: str, faculty: str, purpose: str, requested_at: datetime | None = None) -> Row:
    return {
        "campaign_id": campaign_id,
        "faculty": faculty,
        "purpose": purpose,
        "requested_at": requested_at,
        "status": None,
        "status_at": None,
        "recipients": 0,
        "sent": 0,
        "skipped": {},
        "bounced": 0,
        "failed": 0,
    }


def _delivery(campaign_id: str, member_id: str, **values: Any) -> Row:
    row: Row = {
        "campaign_id": campaign_id,
        "member_key": member_id.lower(),
        "faculty": None,
        "purpose": None,
        "sent_at": None,
        "opened_at": None,
        "clicked_at": None,
    }
    row.update(values)
    return row


def erasure_of(event: CloudEvent) -> tuple[str, datetime] | None:
    if isinstance(event, MemberErasedV1):
        return event.data.member_id.lower(), event.data.erased_at
    return None


def split(events: Iterable[CloudEvent]) -> tuple[list[tuple[str, datetime]], list[tuple[str, Row]]]:
    """A batch as its erasures and its (table, row) pairs."""
    erasures: list[tuple[str, datetime]] = []
    rows: list[tuple[str, Row]] = []
    for event in events:
        erased = erasure_of(event)
        if erased is not None:
            erasures.append(erased)
        rows.extend(rows_of(event))
    return erasures, rows


# --- engagement (CASE's modes; services/analytics/README.md) -------------------------------------------


def engagement_of(table: str, row: Row, w: Weights) -> list[Row]:
    """The engagement facts a merged source row stands for (the mapping from facts to modes)."""
    key = row.get("member_key")
    if key is None:
        return []
    if table == "deliveries":
        out = []
        if row["opened_at"] is not None:
            out.append(_fact(key, f"opened:{row['campaign_id']}", "communication", w.opened, row["opened_at"]))
        if row["clicked_at"] is not None:
            out.append(_fact(key, f"clicked:{row['campaign_id']}", "communication", w.clicked, row["clicked_at"]))
        return out
    if table == "registrations" and row["attended_at"] is not None:
        return [_fact(key, f"attended:{row['registration_id']}", "experiential", w.attended, row["attended_at"])]
    if table == "volunteer_offers":
        weight = w.volunteer if row["state"] == "offered" else 0.0
        return [_fact(key, f"volunteer:{row['offer_type']}", "volunteer", weight, row["recorded_at"])]
    # philanthropic: no giving topic exists yet, so no fact maps to it.
    return []


def _fact(member_key: str, source: str, mode: str, weight: float, at: datetime) -> Row:
    return {"member_key": member_key, "source": source, "mode": mode, "weight": weight, "at": at}


# --- the projection --------------------------------------------------------------------------


@dataclass
class Projection:
    """Rows by table and key, with what a batch changed (for the store to write back)."""

    weights: Weights = field(default_factory=Weights)
    # The secret of `anonymous_key` (settings: ANALYTICS_ERASURE_PEPPER); no default on purpose.
    pepper: bytes = field(kw_only=True, repr=False)
    rows: dict[str, dict[Key, Row]] = field(default_factory=lambda: {name: {} for name in TABLES})
    erased: dict[str, datetime] = field(default_factory=dict)  # anonymous key -> erased_at
    touched: dict[str, set[Key]] = field(default_factory=lambda: {name: set() for name in TABLES})
    deleted: dict[str, set[Key]] = field(default_factory=lambda: {name: set() for name in TABLES})
    erased_now: dict[str, datetime] = field(default_factory=dict)
    _anonymous: dict[str, str] = field(default_factory=dict)  # member id -> anonymous key (a cache)

    def apply(self, events: Iterable[CloudEvent]) -> None:
        """Apply a batch: erasures first (facts of the batch then land anonymously)."""
        self.apply_rows(*split(events))

    def apply_rows(self, erasures: list[tuple[str, datetime]], rows: list[tuple[str, Row]]) -> None:
        """`apply` with the batch already turned into erasures and rows (`split`)."""
        if erasures:
            self._erase(erasures)
        for table, row in rows:
            self.put(table, row)

    def key_for(self, member_id: str) -> str:
        if not self.erased:  # the common case: no hashing at all
            return member_id
        anonymous = self._anonymous.get(member_id)
        if anonymous is None:
            anonymous = self._anonymous[member_id] = anonymous_key(self.pepper, member_id)
        return anonymous if anonymous in self.erased else member_id

    def put(self, table: str, row: Row) -> None:
        spec = TABLES[table]
        if spec.per_member and row.get("member_key") is not None:
            member_key = self.key_for(row["member_key"])
            if table == "members" and member_key != row["member_key"]:
                return  # an erased person is no member: her snapshot is not kept
            row = {**row, "member_key": member_key}
        key = spec.key_of(row)
        rows = self.rows[table]
        merged = spec.merge(rows.get(key), row)
        rows[key] = merged
        self.touched[table].add(key)
        self.deleted[table].discard(key)
        for fact in engagement_of(table, merged, self.weights):
            self.put("engagement_facts", fact)

    def _remove(self, table: str, key: Key) -> Row:
        row = self.rows[table].pop(key)
        self.touched[table].discard(key)
        self.deleted[table].add(key)
        return row

    def _erase(self, erasures: list[tuple[str, datetime]]) -> None:
        """Re-key every row of the erased members to their anonymous keys (one pass per table)."""
        anonymous: dict[str, str] = {}
        for member_id, erased_at in erasures:
            hidden = anonymous[member_id] = anonymous_key(self.pepper, member_id)
            self.erased[hidden] = _earliest(self.erased.get(hidden), erased_at)
            self.erased_now[hidden] = self.erased[hidden]
        for spec in PER_MEMBER:
            theirs = [k for k, r in self.rows[spec.name].items() if r.get("member_key") in anonymous]
            for key in theirs:
                row = self._remove(spec.name, key)
                if spec.name != "members":
                    self.put(spec.name, {**row, "member_key": anonymous[row["member_key"]]})

    def snapshot(self) -> dict[str, dict[Key, Row]]:
        """Every row (for comparing two projections)."""
        return {name: dict(rows) for name, rows in self.rows.items()} | {
            "erased": {(k,): {"member_key": k, "erased_at": v} for k, v in self.erased.items()}
        }
