"""`transactional-mail-requested` (key = member id, or the address when there is no member).

Any service asks the mailer to send one mail that is not marketing: a double
opt-in confirmation, an invitation to the preference centre, a magic link, an
event confirmation. The requesting service writes the words (it knows its own
flow and links); the mailer wraps them in the house template, checks
suppression (hard bounces, erased members) and sends at most once per event id.
Marketing consent does not apply.

A mail to a *role* (`to_role`: an organiser's functional mailbox such as
hh-alumni@usn.no, added in v1 as optional) is about no person: its text holds an
event's figures and no personal link, so it travels unsealed (`is_to_a_role`); the
mailer sends it to that address, suppression checked as for any other.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator

from usn_schemas.envelope import CloudEvent, PersonalData
from usn_schemas.ids import MemberId
from usn_schemas.vocabulary import Language

TRANSACTIONAL_MAIL_REQUESTED_V1 = "no.usn.alumni.transactional-mail-requested.v1"

MailKind = Literal[
    "consent-invitation",
    "consent-confirmation",
    "magic-link",
    "email-verification",
    "event-confirmation",
    "waitlist-promotion",
    "event-reminder",
    "event-update",
    "event-cancellation",
    # To an event's organiser (a role address): the turnout forecast is below the minimum.
    "event-turnout-alert",
]


class Attachment(BaseModel):
    """A small text attachment: an event's iCalendar entry (text/calendar), a QR code (SVG)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    filename: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    # A text type (or SVG) with optional parameters, e.g. "text/calendar; method=REQUEST".
    content_type: str = Field(
        max_length=200, pattern=r"^(text/[a-z0-9.+-]+|image/svg\+xml)(; ?[a-z-]+=[A-Za-z0-9-]+)*$"
    )
    content: str = Field(min_length=1, max_length=100_000)
    # Added in v1 (optional): for a text/calendar part, the mailer adds the recipient as the
    # ATTENDEE of each VEVENT (RFC 5546 wants one in a REQUEST and a CANCEL; only the mailer
    # knows her address, which the requester leaves out).
    add_recipient_as_attendee: bool = False


class Translation(BaseModel):
    """The same mail in one language (see TransactionalMail.translations)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    subject: str = Field(min_length=1, max_length=200)
    body_text: str = Field(min_length=1, max_length=20_000)
    action_label: str | None = Field(None, max_length=100)
    # Added in v1 (optional): the button's link in this language (her page opening in it);
    # without it the mail's `action_url`.
    action_url: str | None = Field(None, max_length=2000)


class TransactionalMail(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: MailKind
    member_id: MemberId | None = None
    # Optional since events (which knows only member ids): without it the mailer sends to the
    # address in its own copy of the member (member-registered/-updated), suppression as always.
    to_address: EmailStr | None = PersonalData(None)
    to_name: str | None = PersonalData(None, max_length=200)
    # A role's (functional) mailbox, not a person's: for mail to an organiser. Not personal
    # data; a mail to a role names no member and no personal address, and holds no personal data.
    to_role: EmailStr | None = Field(None, max_length=254)
    language: Language = "nb"
    subject: str = Field(min_length=1, max_length=200)
    # Plain text; the mailer renders the HTML part from it. Holds personal links.
    body_text: str = PersonalData(min_length=1, max_length=20_000)
    # The main link, for a button in the HTML part (signed, personal).
    action_url: str | None = PersonalData(None, max_length=2000)
    action_label: str | None = Field(None, max_length=100)
    # Not worth sending after this (the link in it has expired).
    expires_at: datetime | None = None
    # Added in v1 (optional): the mail in each language; the mailer sends the one in the
    # member's language when it knows it (membership's `language`), else subject and body
    # above (which then hold both). Personal data: the texts hold her links.
    translations: dict[Language, Translation] | None = PersonalData(None)
    # Extension (optional): attachments (not personal data: the requester puts none in them).
    attachments: list[Attachment] = Field(default_factory=list, max_length=5)

    @model_validator(mode="after")
    def _someone(self) -> TransactionalMail:
        if self.to_role is not None:
            if self.to_address is not None or self.member_id is not None or self.to_name is not None:
                raise ValueError("a mail to_role names no member, to_address or to_name")
        elif self.to_address is None and self.member_id is None:
            raise ValueError("to_address, member_id or to_role is required")
        return self

    @property
    def is_to_a_role(self) -> bool:
        """A mail to a role holds no personal data: the outbox sends it unsealed (no subject has a key)."""
        return self.to_role is not None


class TransactionalMailRequestedV1(CloudEvent):
    EVENT_TYPE: ClassVar[str] = TRANSACTIONAL_MAIL_REQUESTED_V1
    type: Literal["no.usn.alumni.transactional-mail-requested.v1"]
    data: TransactionalMail
