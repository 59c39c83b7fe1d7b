"""Events settings: environment variables prefixed EVENTS_ (see docs/configuration.md)."""

from __future__ import annotations

from pydantic import EmailStr, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from alumni_kit.settings import ServiceSettings
from usn_schemas.events import Organiser


class EventsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EVENTS_", extra="ignore")

    database_url: str = "postgresql://events:events-dev@127.0.0.1:55432/events"
    http_port: int = 8104
    # How often the service looks for offers past their time (each goes to the next in line).
    # An offer outlives its time by at most this much.
    offer_sweep_seconds: float = Field(30.0, gt=0, le=3600)
    # How often the minimum-turnout forecast runs (and once at start); each run replaces
    # the day's forecast, so there is one per event and day (events/forecast/job.py).
    forecast_seconds: float = Field(3600.0, gt=0, le=86400)
    # Concurrent registrations for one event wait on its row lock, each holding a
    # connection meanwhile: a larger pool than the kit's default.
    db_pool_max: int = Field(20, ge=2, le=100)
    group_id: str = "events"
    # Where members reach the service's pages: the links in invitations and mails point here.
    public_base_url: str = Field("http://127.0.0.1:8104", pattern=r"^https?://[^\s/{}]+(/[^\s{}]*)?$")
    # The ORGANIZER of the iCalendar entries (the address the mailer sends from).
    calendar_organizer: str = Field("alumni@usn.no", pattern=r"^[^\s@:;,]+@[^\s@:;,]+$")
    # A reminder goes to every registered member this long before the start.
    reminder_hours: float = Field(24.0, gt=0, le=24 * 14)
    # How often the service looks for events due a reminder.
    reminder_sweep_seconds: float = Field(60.0, gt=0, le=3600)
    # Ed25519 keys of the check-in codes, "kid:seed,…" (events/checkin/codes.py; the first signs,
    # all are published). Unset: the public development key, with a warning at startup.
    checkin_keys: SecretStr = SecretStr("")
    # Where each organiser is told when an event's turnout forecast falls below its minimum:
    # a role address per organiser code, JSON ({"HH": "hh-alumni@usn.no"}); an event's own
    # `organiser_contact` comes first. Neither: no mail (the gauge and alert rule remain).
    organiser_contacts: dict[Organiser, EmailStr] = Field(default_factory=dict)
