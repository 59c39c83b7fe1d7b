"""Where the turnout alert goes: the event's own role address first, else the organiser's
setting (events/forecast/flows.py), and the contract's rules for a mail to a role."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from alumni_kit.outbox import OutboxMessage
from events.forecast.flows import Forecasting, ForecastMetrics
from events.forecast.repository import Due
from events.settings import EventsSettings
from usn_schemas.mail import TransactionalMail, TransactionalMailRequestedV1

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def _due(organiser: str, contact: str | None) -> Due:
    return Due("3f9a1c2e-7b4d-4e5f-8a6b-1c2d3e4f5a6b", organiser, "career", 30, NOW, NOW, "Karrieredag", contact)


def test_the_events_own_contact_comes_first_then_the_organisers_setting() -> None:
    settings = EventsSettings(organiser_contacts={"HH": "hh-alumni@usn.no"})
    forecasting = Forecasting(ForecastMetrics(CollectorRegistry()), dict(settings.organiser_contacts.items()))
    assert forecasting.contact_of(_due("HH", "hh-karriere@usn.no")) == "hh-karriere@usn.no"
    assert forecasting.contact_of(_due("HH", None)) == "hh-alumni@usn.no"
    assert forecasting.contact_of(_due("TNM", None)) is None  # nowhere to write: no mail


def test_organiser_contacts_are_checked_as_addresses_for_known_organisers() -> None:
    with pytest.raises(ValidationError):
        EventsSettings(organiser_contacts={"HH": "not an address"})
    with pytest.raises(ValidationError):
        EventsSettings(organiser_contacts={"XX": "x@usn.no"})


def _role_mail(**fields: object) -> TransactionalMail:
    return TransactionalMail.model_validate(
        {"kind": "event-turnout-alert", "subject": "Få påmeldte", "body_text": "10 of 30", **fields}
    )


def test_a_mail_to_a_role_names_nobody_else_and_leaves_unsealed() -> None:
    mail = _role_mail(to_role="hh-alumni@usn.no")
    assert mail.is_to_a_role
    event = TransactionalMailRequestedV1.create(subject="e", data=mail, source="/usn-alumni/events")
    assert b"10 of 30" in OutboxMessage("transactional-mail-requested", "e", event).record()[2]
    for other in ({"member_id": "7a3e9d21-4b6c-4f18-8e2d-1c0b9a8f7e6d"}, {"to_address": "kari@example.no"}):
        with pytest.raises(ValidationError):
            _role_mail(to_role="hh-alumni@usn.no", **other)
    with pytest.raises(ValidationError):
        _role_mail(to_role="not an address")


def test_a_mail_to_a_member_must_still_be_sealed() -> None:
    mail = _role_mail(member_id="7a3e9d21-4b6c-4f18-8e2d-1c0b9a8f7e6d")
    assert not mail.is_to_a_role
    event = TransactionalMailRequestedV1.create(subject="m", data=mail, source="/usn-alumni/events")
    with pytest.raises(ValueError, match="must be sealed"):
        OutboxMessage("transactional-mail-requested", "m", event)
