"""Publishing an event asks the mailer for an invitation campaign to its audience.

The request goes on `campaigns` (purpose `events`) through the service's outbox, in
the transaction of the consumer of `event-published` (with its inbox): one campaign per
event, and the mailer ignores a repeated campaign id anyway. So only members who
consented to event invitations get one, checked by the mailer at send time as for
every campaign. Each invitation carries her own registration link: the campaign's
`member_link` asks the mailer to sign a member link of purpose `events` per recipient.
"""

from __future__ import annotations

from datetime import UTC, datetime

from alumni_kit.consumer import BatchHandler, Incoming
from alumni_kit.db import Conn
from alumni_kit.outbox import OutboxMessage, add_to_outbox
from alumni_kit.runtime import ServiceRuntime, Subscription
from events.mail import texts
from events.web.links import Links
from usn_schemas.campaign import CampaignRequest, CampaignRequestedV1, MemberLinkSpec
from usn_schemas.events import EventFact, EventPublishedV1
from usn_schemas.registry import TOPIC_CONTRACTS

TOPIC = "campaigns"
SOURCE = "/usn-alumni/events"
PURPOSE = "events"


def campaign_id(event_id: str) -> str:
    return f"event-{event_id}"


def invitation(fact: EventFact, links: Links, now: datetime) -> CampaignRequest:
    d = fact.definition
    subject, body = texts.invitation(d)
    return CampaignRequest(
        campaign_id=campaign_id(fact.event_id),
        requested_by="events",
        faculty=d.organiser,
        purpose=PURPOSE,
        audience=d.audience,
        subject=subject[:300],
        body_markdown=body,
        language="nb",
        member_link=MemberLinkSpec(
            url=links.invitation_template(fact.event_id), valid_days=Links.invitation_days(d.starts_at, now)
        ),
    )


def subscribe(runtime: ServiceRuntime, group_id: str, links: Links) -> None:
    """The consumer of the service's own `event-published`, and the `campaigns` it writes."""
    runtime.subscribe(
        Subscription("event-published", group_id, TOPIC_CONTRACTS["event-published"], make_handler(links)),
        EventPublishedV1,
        "The service's own fact, read back: an invitation campaign to the event's audience.",
    )
    runtime.publishes("campaigns", CampaignRequestedV1, "Invitations to a published event (purpose events).")


def make_handler(links: Links) -> BatchHandler:
    async def on_published(conn: Conn, events: list[Incoming]) -> None:
        now = datetime.now(UTC)
        messages = []
        for incoming in events:
            fact = incoming.event.data
            assert isinstance(fact, EventFact)
            request = invitation(fact, links, now)
            event = CampaignRequestedV1.create(subject=request.campaign_id, data=request, source=SOURCE)
            messages.append(OutboxMessage(TOPIC, request.campaign_id, event))
        await add_to_outbox(conn, messages)

    return on_published
