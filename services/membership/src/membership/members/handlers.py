"""Membership's event handlers (app.py lists what each one subscribes to)."""

from __future__ import annotations

from collections import Counter as Tally
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

from alumni_kit.consumer import BatchHandler, Incoming
from alumni_kit.db import Conn
from alumni_kit.outbox import OutboxMessage, add_to_outbox
from alumni_kit.shredding import SubjectKey
from alumni_kit.tracing import event_span
from membership import SOURCE
from membership.members import domain, repository
from membership.members.domain import Change, EligibilityPolicy, Member
from membership.rights import keys
from membership.rights.erasure import old_facts_of_erased
from usn_schemas.envelope import CloudEvent
from usn_schemas.graduated import GraduatedV1
from usn_schemas.member import MemberRegisteredV1, MemberUpdatedData, MemberUpdatedV1


class MembershipMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.not_qualifying = Counter(
            "membership_graduations_not_qualifying",
            "Graduations the eligibility policy does not count.",
            ["degree_level"],
            registry=registry,
        )
        self.field_defects = Counter(
            "membership_field_defects", "Invalid optional fields left out of a member.", ["field"], registry=registry
        )
        self.changes = Counter(
            "membership_member_changes", "Members registered or updated.", ["kind"], registry=registry
        )
        self.of_erased = Counter(
            "membership_graduations_of_erased",
            "Replayed graduations of erased members, ignored (they must not bring her back).",
            registry=registry,
        )

    def record(self, tally: Tally[tuple[str, str]]) -> None:
        """Add a batch's counts: one increment per label, not per event."""
        for (metric, label), count in tally.items():
            getattr(self, metric).labels(label).inc(count)


def make_graduated_handler(policy: EligibilityPolicy, metrics: MembershipMetrics, pepper: bytes) -> BatchHandler:
    """`graduated` → members: one transaction per batch, one outgoing fact per effective change.

    Facts are sealed with each member's key (crypto-shredding); graduations that
    only repeat what an erased member had are skipped.
    """

    async def on_graduated(conn: Conn, events: list[Incoming]) -> None:
        # Locks first: an erasure takes the same per-student-number lock, so its tombstone
        # is either seen here or written after this batch (never in between).
        members = await repository.lock_and_load_members(conn, (_graduation(e).data.student_number for e in events))
        old = await old_facts_of_erased(conn, pepper, [_graduation(e) for e in events])
        if old:
            metrics.of_erased.inc(len(old))
            events = [e for e in events if e.event.id not in old]
        facts: list[_Fact] = []
        tally: Tally[tuple[str, str]] = Tally()
        touched: dict[str, Member] = {}
        registered: set[str] = set()  # members created by this batch: fresh ids, no key yet
        for incoming in events:
            event = _graduation(incoming)
            with event_span("membership apply graduated", incoming.trace_headers, event.id) as outgoing:
                member, change = domain.apply_graduation(
                    members.get(event.data.student_number), event.data, event.id, policy
                )
                _tally(tally, event, change, policy.qualifies(event.data))
                if member is None or change is None:
                    continue
                members[event.data.student_number] = touched[member.member_id] = member
                if change.kind == "registered":
                    registered.add(member.member_id)
                facts.append(_fact(member, change, outgoing))
        await repository.save_members(conn, touched.values())
        sealing = keys.new_subject_keys(registered) | await keys.subject_keys(conn, touched.keys() - registered)
        await keys.store_new(conn, [sealing[m] for m in registered])
        await add_to_outbox(conn, [f.sealed_with(sealing[f.key]) for f in facts])
        metrics.record(tally)

    return on_graduated


def _graduation(incoming: Incoming) -> GraduatedV1:
    assert isinstance(incoming.event, GraduatedV1)
    return incoming.event


def _tally(tally: Tally[tuple[str, str]], event: GraduatedV1, change: Change | None, qualifies: bool) -> None:
    for defect in event.data.defects:
        tally["field_defects", defect.field] += 1
    if not qualifies:
        tally["not_qualifying", event.data.degree_level] += 1
    elif change is not None:
        tally["changes", change.kind] += 1


@dataclass(frozen=True)
class _Fact:
    """An outgoing fact before its seal: the snapshot is taken at the change, the key fetched per batch."""

    topic: str
    key: str
    event: CloudEvent
    headers: dict[str, str]

    def sealed_with(self, key: SubjectKey) -> OutboxMessage:
        return OutboxMessage(topic=self.topic, key=self.key, event=self.event, headers=self.headers, seal=key)


def _fact(member: Member, change: Change, trace_headers: dict[str, str]) -> _Fact:
    snapshot = member.snapshot()
    event: MemberRegisteredV1 | MemberUpdatedV1
    if change.kind == "registered":
        event = MemberRegisteredV1.create(subject=member.member_id, data=snapshot, source=SOURCE)
        topic = "member-registered"
    else:
        data = MemberUpdatedData(**dict(snapshot), changed=list(change.changed))
        event = MemberUpdatedV1.create(subject=member.member_id, data=data, source=SOURCE)
        topic = "member-updated"
    return _Fact(topic=topic, key=member.member_id, event=event, headers=trace_headers)
