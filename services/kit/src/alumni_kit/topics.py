"""The platform's topics, partitions and retention, and `alumni-topics` to create them.

High-volume topics (graduated and the member facts it fans out to) get 6
partitions: enough for 6 consumer replicas, cheap on a single broker.
"""

from __future__ import annotations

import argparse
import asyncio

from alumni_kit.kafka import DAY_MS, TopicSpec, ensure_topics, with_dlq

MIB = 1024 * 1024

PLATFORM_TOPICS: list[TopicSpec] = [
    # Inbound from FS. Accepts up to 4 MiB so that an oversized message reaches
    # the consumer and is dead-lettered with a reason instead of being refused
    # at the producer with none.
    # FS publishes personal data in the clear; membership's own (sealed) facts are the
    # platform's record, so `graduated` is kept 30 days only, and what was applied is
    # deleted from a member's partition at her erasure (docs/erasure.md).
    *with_dlq(TopicSpec("graduated", 6, retention_ms=30 * DAY_MS, max_message_bytes=4 * MIB)),
    *with_dlq(TopicSpec("member-registered", 6)),
    *with_dlq(TopicSpec("member-updated", 6)),
    *with_dlq(TopicSpec("member-erased", 6)),
    # Consent facts, key = member id; consumers order them by the per-member sequence.
    *with_dlq(TopicSpec("consent-given", 6)),
    *with_dlq(TopicSpec("consent-withdrawn", 6)),
    # Volunteer offers, key = member id; consumers order them by the per-member sequence.
    *with_dlq(TopicSpec("volunteer-offered", 3)),
    *with_dlq(TopicSpec("volunteer-withdrawn", 3)),
    # Mail any service asks the mailer to send (opt-in confirmations, magic links).
    # Kept 30 days only: the messages hold addresses and personal links, and a
    # request older than its link's expiry is worth nothing.
    *with_dlq(TopicSpec("transactional-mail-requested", 3, retention_ms=30 * DAY_MS)),
    # Inbound from communications tools (and the mailer's own staff API); key = campaign id.
    *with_dlq(TopicSpec("campaigns", 3, max_message_bytes=MIB)),
    # What the mailer did: one fact per recipient, engagement, bounces, campaign progress.
    # Analytics consumes these and the events service's facts, so they have dead letters too.
    *with_dlq(TopicSpec("newsletter-sent", 6)),
    *with_dlq(TopicSpec("email-bounced", 3)),
    *with_dlq(TopicSpec("email-opened", 6)),
    *with_dlq(TopicSpec("email-clicked", 6)),
    *with_dlq(TopicSpec("campaign-status", 3)),
    # The events service's facts, key = event id: one event's facts stay in one partition
    # of each topic, and a per-event `sequence` orders them across topics (usn_schemas.events).
    *with_dlq(TopicSpec("event-published", 3)),
    *with_dlq(TopicSpec("event-updated", 3)),
    *with_dlq(TopicSpec("event-cancelled", 3)),
    *with_dlq(TopicSpec("event-registered", 6)),
    *with_dlq(TopicSpec("event-waitlisted", 6)),
    *with_dlq(TopicSpec("event-offer-made", 6)),
    *with_dlq(TopicSpec("event-offer-expired", 6)),
    *with_dlq(TopicSpec("event-registration-cancelled", 6)),
    *with_dlq(TopicSpec("event-attended", 6)),
    # Inbound from the EVU system (continuing education), key = student number; in the clear
    # like `graduated`, so kept 30 days only: analytics keeps what it needs (a keyed hash).
    *with_dlq(TopicSpec("evu-enrolled", 3, retention_ms=30 * DAY_MS)),
]


MEMBER = "the member id (a UUID)"
EVENT = "the event id (a UUID)"
CAMPAIGN = "the campaign id"

# What each topic's Kafka key is (= the CloudEvent's subject, docs/contracts.md). A
# dead-letter topic keeps its message's key. The AsyncAPI documents publish these.
TOPIC_KEYS: dict[str, str] = {
    "graduated": "the student number (FS)",
    "member-registered": MEMBER,
    "member-updated": MEMBER,
    "member-erased": MEMBER,
    "consent-given": MEMBER,
    "consent-withdrawn": MEMBER,
    "volunteer-offered": MEMBER,
    "volunteer-withdrawn": MEMBER,
    "transactional-mail-requested": "the member id, or the sign-up or application id when there is no member yet",
    "campaigns": CAMPAIGN,
    "newsletter-sent": MEMBER,
    "email-bounced": MEMBER,
    "email-opened": MEMBER,
    "email-clicked": MEMBER,
    "campaign-status": CAMPAIGN,
    "event-published": EVENT,
    "event-updated": EVENT,
    "event-cancelled": EVENT,
    "event-registered": EVENT,
    "event-waitlisted": EVENT,
    "event-offer-made": EVENT,
    "event-offer-expired": EVENT,
    "event-registration-cancelled": EVENT,
    "event-attended": EVENT,
    "evu-enrolled": "the student number (the EVU system)",
}


def topic_spec(name: str) -> TopicSpec:
    """The declared topic `name` (without prefix); KeyError for a topic the platform does not declare."""
    for spec in PLATFORM_TOPICS:
        if spec.name == name:
            return spec
    raise KeyError(name)


def topic_key(name: str) -> str:
    """What the key of `name` (or of the topic whose dead letters it holds) is."""
    return TOPIC_KEYS[name.removesuffix(".dlq")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="alumni-topics", description="Create the platform's Kafka topics.")
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--prefix", default="", help="topic name prefix (ALUMNI_TOPIC_PREFIX of the services)")
    args = parser.parse_args(argv)
    created = asyncio.run(ensure_topics(args.bootstrap, PLATFORM_TOPICS, args.prefix))
    print(f"topics: {len(PLATFORM_TOPICS)} declared, created now: {', '.join(created) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
