"""The effect of one event in one service's database, read back and computed independently.

Every generated event carries its own entity id (student number, member id,
campaign id, event id), so its effect can be found, and any effect of a message
that should have none shows up too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from tests.e2e.expect import ELIGIBLE
from tests.fuzz.messages import BAD_TEMPLATES, EVENTS_OWN_FACTS


@dataclass(frozen=True)
class Effect:
    # SQL returning (entity, *what) for the entities in $1 (text[]).
    query: str
    # What the row should say for a valid event (as the contract reads it); None: it makes no row.
    expected: Callable[[dict[str, Any]], tuple[Any, ...] | None]


def _member(doc: dict[str, Any]) -> tuple[Any, ...]:
    d = doc["data"]
    return (d["given_name"], d["family_name"], d.get("email"))


def _graduation(doc: dict[str, Any]) -> tuple[Any, ...] | None:
    d = doc["data"]
    if d["degree_level"] not in ELIGIBLE:
        return None
    return (d["given_name"], d["family_name"], 1, d["programme_code"], d["degree_level"])


def _consent(doc: dict[str, Any]) -> tuple[Any, ...]:
    d = doc["data"]
    return (1, d["channel"], d["purpose"], d["state"], d["sequence"], d["fact_id"])


_CONSENT_VIEW = Effect(
    "SELECT member_id, count(*), min(channel), min(purpose), min(state), min(sequence), min(fact_id)"
    " FROM consent_view WHERE member_id = ANY($1::text[]) GROUP BY member_id",
    _consent,
)
_ERASED = Effect("SELECT member_id, true FROM erased_members WHERE member_id = ANY($1::text[])", lambda doc: (True,))
# Events keeps erased ids as uuid, lowered (events/handlers.py): matched the same way.
_EVENTS_ERASED = Effect(
    "SELECT e.entity, true FROM unnest($1::text[]) AS e(entity)"
    " JOIN erased_members m ON m.member_id::text = lower(e.entity)",
    lambda doc: (True,),
)
_MAILER_MEMBER = Effect(
    "SELECT member_id, given_name, family_name, email FROM members WHERE member_id = ANY($1::text[])", _member
)
_CONSENT_MEMBER = Effect(
    "SELECT member_id, given_name, email FROM subjects WHERE member_id = ANY($1::text[])",
    lambda doc: (doc["data"]["given_name"], doc["data"].get("email")),
)


def _processed_by(topic: str) -> Effect:
    """Processed by the consumer of `topic` (its inbox; consumer = `<group>.<topic>`)."""
    return Effect(
        f"SELECT event_id, true FROM inbox WHERE consumer LIKE '%.{topic}' AND event_id = ANY($1::text[])",
        lambda doc: (True,),
    )


EFFECTS: dict[tuple[str, str], Effect] = {
    ("membership", "graduated"): Effect(
        "SELECT m.student_number, m.given_name, m.family_name, count(p.*), min(p.programme_code), min(p.degree_level)"
        " FROM members m LEFT JOIN programmes p USING (member_id)"
        " WHERE m.student_number = ANY($1::text[]) GROUP BY 1, 2, 3",
        _graduation,
    ),
    ("membership", "consent-given"): _CONSENT_VIEW,
    ("membership", "consent-withdrawn"): _CONSENT_VIEW,
    ("mailer", "consent-given"): _CONSENT_VIEW,
    ("mailer", "consent-withdrawn"): _CONSENT_VIEW,
    ("consent", "member-registered"): _CONSENT_MEMBER,
    ("consent", "member-updated"): _CONSENT_MEMBER,
    ("mailer", "member-registered"): _MAILER_MEMBER,
    ("mailer", "member-updated"): _MAILER_MEMBER,
    ("consent", "member-erased"): _ERASED,
    ("mailer", "member-erased"): _ERASED,
    ("events", "member-erased"): _EVENTS_ERASED,
    **{("events", topic): _processed_by(topic) for topic, _ in EVENTS_OWN_FACTS},
    ("mailer", "transactional-mail-requested"): Effect(
        "SELECT event_id, kind, member_id FROM transactional WHERE event_id = ANY($1::text[])",
        lambda doc: (doc["data"]["kind"], doc["data"].get("member_id")),
    ),
    ("mailer", "campaigns"): Effect(
        "SELECT campaign_id, subject, body_markdown, faculty, purpose, status = 'failed' FROM campaigns"
        " WHERE campaign_id = ANY($1::text[])",
        lambda doc: (
            *(doc["data"][k] for k in ("subject", "body_markdown", "faculty", "purpose")),
            doc["data"]["body_markdown"] in BAD_TEMPLATES,  # failed: the template cannot be rendered
        ),
    ),
}


async def observed(conn: asyncpg.Connection, effect: Effect, entities: list[str]) -> dict[str, tuple[Any, ...]]:
    rows = await conn.fetch(effect.query, entities)
    return {r[0]: tuple(r[1:]) for r in rows}
