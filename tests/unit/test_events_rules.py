"""The events service's pure rules: definitions, placement, offers and their expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from events import rules
from events.rules import Seats
from tests.events import event_definition
from usn_schemas.events import EventDefinition

NOW = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)


def definition(**fields: object) -> EventDefinition:
    body = event_definition(**fields)  # type: ignore[arg-type]
    return EventDefinition.model_validate(body)


def fields_at_fault(d: EventDefinition, now: datetime | None = None) -> list[str]:
    return [p.field for p in rules.problems_of(d, now or datetime.now(UTC))]


def test_a_plain_definition_is_valid() -> None:
    assert fields_at_fault(definition()) == []


def test_each_broken_rule_names_its_field() -> None:
    start = datetime.now(UTC) + timedelta(days=10)
    assert fields_at_fault(
        definition(
            ends_at=(start - timedelta(hours=1)).isoformat(), starts_at=start.isoformat(), registration_deadline=None
        )
    ) == ["ends_at"]
    assert fields_at_fault(definition(capacity=0)) == ["capacity"]
    late = (start + timedelta(minutes=1)).isoformat()
    assert fields_at_fault(
        definition(
            starts_at=start.isoformat(), ends_at=(start + timedelta(hours=1)).isoformat(), registration_deadline=late
        )
    ) == ["registration_deadline"]
    assert fields_at_fault(definition(hours_ahead=-1)) == ["starts_at"]
    assert fields_at_fault(definition(address=None)) == ["address"]
    assert fields_at_fault(definition(address=None, online_url="https://usn.zoom.us/j/1")) == []


def test_a_minimum_is_decided_before_the_start_and_within_the_capacity() -> None:
    d = definition(
        capacity=10, minimum={"registrations": 11, "decide_by": (datetime.now(UTC) + timedelta(days=90)).isoformat()}
    )
    assert fields_at_fault(d) == ["minimum.decide_by", "minimum.registrations"]


def test_the_deadline_defaults_to_the_start() -> None:
    d = definition(registration_deadline=None)
    assert rules.deadline_of(d) == d.starts_at


@pytest.mark.parametrize(
    ("seats", "placed"),
    [
        (Seats(2, 0, 0, 0), "registered"),
        (Seats(2, 1, 0, 0), "registered"),
        (Seats(2, 2, 0, 0), "waitlisted"),
        (Seats(2, 1, 1, 0), "waitlisted"),  # an offer holds its seat
        (Seats(2, 1, 0, 3), "waitlisted"),  # a free seat goes to the list first (after the deadline, say)
    ],
)
def test_placement(seats: Seats, placed: str) -> None:
    assert rules.placement(seats) == placed


def test_offers_go_to_as_many_as_seats_are_free() -> None:
    assert rules.offers_due(Seats(100, 70, 0, 400)) == 30
    assert rules.offers_due(Seats(100, 99, 0, 0)) == 0
    assert rules.offers_due(Seats(100, 90, 5, 2)) == 2
    assert rules.offers_due(Seats(100, 100, 0, 5)) == 0


def test_an_offer_holds_for_its_hours_but_never_past_the_deadline_or_the_start() -> None:
    deadline, start = NOW + timedelta(days=5), NOW + timedelta(days=6)
    assert rules.offer_expiry(NOW, 48, deadline, start) == NOW + timedelta(hours=48)
    assert rules.offer_expiry(NOW, 0.5, deadline, start) == NOW + timedelta(minutes=30)
    assert rules.offer_expiry(NOW, 24 * 7, deadline, start) == deadline
    assert rules.offer_expiry(NOW, 24 * 7, start + timedelta(days=1), start) == start
    assert rules.offer_expiry(deadline, 48, deadline, start) is None  # no offer after the deadline
    assert rules.offer_expiry(deadline + timedelta(seconds=1), 48, deadline, start) is None


@pytest.mark.parametrize(
    ("status", "now", "code"),
    [
        ("published", NOW, None),
        ("draft", NOW, 404),
        ("cancelled", NOW, 410),
        ("published", NOW + timedelta(days=5), 410),  # at the deadline
        ("published", NOW + timedelta(days=7), 410),  # after the start
    ],
)
def test_registration_refusals(status: str, now: datetime, code: int | None) -> None:
    refusal = rules.registration_refusal(status, NOW + timedelta(days=5), NOW + timedelta(days=6), now)
    assert (refusal.status if refusal else None) == code
