"""Pinned inbound contract `campaigns` v1, and what the mailer publishes about sending.

`campaigns` (key = campaign id): communications tools publish it, the mailer's own
staff API writes the same. A second request with the same `campaign_id` has no effect.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from usn_schemas.envelope import CloudEvent, PersonalData
from usn_schemas.vocabulary import Language

CAMPAIGN_REQUESTED_V1 = "no.usn.alumni.campaign-requested.v1"
NEWSLETTER_SENT_V1 = "no.usn.alumni.newsletter-sent.v1"
EMAIL_BOUNCED_V1 = "no.usn.alumni.email-bounced.v1"
EMAIL_OPENED_V1 = "no.usn.alumni.email-opened.v1"
EMAIL_CLICKED_V1 = "no.usn.alumni.email-clicked.v1"
CAMPAIGN_STATUS_V1 = "no.usn.alumni.campaign-status.v1"

Sender = Literal["HH", "TNM", "HS", "HIU", "USN"]
Label = Annotated[str, Field(min_length=1, max_length=100)]


class Audience(BaseModel):
    """Who receives it; every key is optional and each one narrows the audience."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    faculties: list[Label] | None = Field(None, max_length=10)
    programme_codes: list[Label] | None = Field(None, max_length=500)
    degree_levels: list[Label] | None = Field(None, max_length=10)
    campuses: list[Label] | None = Field(None, max_length=20)
    graduation_year_from: int | None = Field(None, ge=1900, le=2200)
    graduation_year_to: int | None = Field(None, ge=1900, le=2200)


class MemberLinkSpec(BaseModel):
    """A personal link per recipient (optional, v1-compatible): the mailer signs a member link
    (`alumni_kit.auth.issue_member_link`, of the campaign's purpose) for each recipient and
    puts it where `url` says `{token}`; the body shows it as `{{ member_link }}`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    url: str = Field(min_length=8, max_length=500, pattern=r"^https?://[^\s{}]*\{token\}[^\s{}]*$")
    # How long each recipient's link works.
    valid_days: int = Field(30, ge=1, le=400)


class CampaignRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    campaign_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    requested_by: str = Field(min_length=1, max_length=200)
    faculty: Sender
    # One of the consent purposes; the mailer checks it against its configured list.
    purpose: str = Field(pattern=r"^[a-z][a-z0-9-]{1,39}$")
    audience: Audience = Audience()
    subject: str = Field(min_length=1, max_length=300)
    body_markdown: str = Field(min_length=1, max_length=200_000)
    language: Language = "nb"
    send_at: AwareDatetime | None = None
    # Extension (optional, off by default): a tracking pixel for opens.
    track_opens: bool = False
    # Extension (optional): each recipient's own signed link, e.g. an event's registration page.
    member_link: MemberLinkSpec | None = None


class CampaignRequestedV1(CloudEvent):
    EVENT_TYPE: ClassVar[str] = CAMPAIGN_REQUESTED_V1
    MAX_BYTES: ClassVar[int] = 256 * 1024
    SEALED_AT_SOURCE: ClassVar[bool] = False  # inbound from communications tools too
    type: Literal["no.usn.alumni.campaign-requested.v1"]
    data: CampaignRequest


class NewsletterSent(BaseModel):
    """One message accepted by the SMTP relay for one member."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    campaign_id: str
    member_id: str
    faculty: Sender
    purpose: str
    message_id: str
    # The consent fact (consent-given's fact id) the send relied on.
    consent_fact_id: str
    sent_at: datetime


class NewsletterSentV1(CloudEvent):
    EVENT_TYPE: ClassVar[str] = NEWSLETTER_SENT_V1
    type: Literal["no.usn.alumni.newsletter-sent.v1"]
    data: NewsletterSent


class EmailBounced(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    member_id: str | None = None
    campaign_id: str | None = None
    address: str = PersonalData()
    kind: Literal["hard", "soft"]
    status: str  # enhanced status code, e.g. 5.1.1
    # Hard bounces, and soft ones past the threshold, stop all mail to the address.
    suppressed: bool
    bounced_at: datetime


class EmailBouncedV1(CloudEvent):
    EVENT_TYPE: ClassVar[str] = EMAIL_BOUNCED_V1
    type: Literal["no.usn.alumni.email-bounced.v1"]
    data: EmailBounced


class EmailEngagement(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    campaign_id: str
    member_id: str
    at: datetime
    url: str | None = None  # clicks: where the link led


class EmailOpenedV1(CloudEvent):
    EVENT_TYPE: ClassVar[str] = EMAIL_OPENED_V1
    type: Literal["no.usn.alumni.email-opened.v1"]
    data: EmailEngagement


class EmailClickedV1(CloudEvent):
    EVENT_TYPE: ClassVar[str] = EMAIL_CLICKED_V1
    type: Literal["no.usn.alumni.email-clicked.v1"]
    data: EmailEngagement


# `failed`: the campaign could not be rendered (its template fails or exceeds the mailer's
# bounds); `reason` says where and why. Added before any consumer of campaign-status existed.
CampaignState = Literal["scheduled", "sending", "paused", "done", "cancelled", "failed"]


class CampaignStatus(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    campaign_id: str
    faculty: Sender
    purpose: str
    status: CampaignState
    recipients: int = 0
    sent: int = 0
    # e.g. {"no-consent": 120, "suppressed": 3, "erased": 1, "no-address": 9}
    skipped: dict[str, int] = Field(default_factory=dict)
    bounced: int = 0
    failed: int = 0
    # killed between the relay's acceptance and the commit: neither resent nor counted sent
    uncertain: int = 0
    # Why a failed campaign failed (the template's line and problem; never personal data).
    reason: str | None = Field(None, max_length=1000)
    at: datetime


class CampaignStatusV1(CloudEvent):
    EVENT_TYPE: ClassVar[str] = CAMPAIGN_STATUS_V1
    type: Literal["no.usn.alumni.campaign-status.v1"]
    data: CampaignStatus
