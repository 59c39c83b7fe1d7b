"""Fuzzing every consumed topic on the real broker and databases, with the services as processes.

For each topic some service consumes, a few hundred generated messages
(tests/fuzz/messages.py: valid events, repeats, hostile field values, other
versions, random bytes and JSON) are published with a plain producer, all
topics at once. Then, per consumer: every valid event's effect is in its
database exactly once and with the values sent; every invalid one is in
`<topic>.dlq` under that consumer's group with a reason, and has no effect;
no valid one is dead-lettered; every consumer group has committed to the end
of its topic; and no service has died.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from typing import Any

import asyncpg
import pytest
from pydantic import EmailStr, TypeAdapter, ValidationError

from tests.fuzz.effects import EFFECTS, observed
from tests.fuzz.messages import TOPICS, Message, generate, outcome_for
from tests.fuzz.observe import dead_letters, publish_all, wait_for_no_lag
from tests.smtp import SmtpSink
from tests.stack import ServiceProcess, Stack, eventually, read_topic

pytestmark = pytest.mark.real

PER_TOPIC = 300
# Everything published is processed well within this on the 2-core machine (about 10 s);
# a consumer still behind after it is stalled.
CATCH_UP_SECONDS = 120


async def test_every_consumed_topic_takes_hostile_messages_without_losing_one_or_stalling(
    stack: Stack,
    topic_prefix: str,
    membership_service: ServiceProcess,
    consent_service: ServiceProcess,
    mailer_service: ServiceProcess,
    events_service: ServiceProcess,
    membership_conn: asyncpg.Connection,
    consent_conn: asyncpg.Connection,
    mailer_conn: asyncpg.Connection,
    events_conn: asyncpg.Connection,
    smtp_sink: SmtpSink,
) -> None:
    services = {
        "membership": membership_service,
        "consent": consent_service,
        "mailer": mailer_service,
        "events": events_service,
    }
    conns = {"membership": membership_conn, "consent": consent_conn, "mailer": mailer_conn, "events": events_conn}
    for service in services.values():
        service.start()
    started = time.monotonic()
    messages = generate(PER_TOPIC)  # while the services start: they are other processes
    generated = time.monotonic() - started
    await asyncio.gather(*(s.wait_ready() for s in services.values()))

    await publish_all(stack.bootstrap, topic_prefix, _interleaved(messages))
    groups = {
        f"{services[name].env[name.upper() + '_GROUP_ID']}.{t.name}": topic_prefix + t.name
        for t in TOPICS
        for name in t.consumers
    }
    behind = await wait_for_no_lag(stack.bootstrap, groups, CATCH_UP_SECONDS)
    problems = [f"{group}: {n} records not committed after {CATCH_UP_SECONDS} s" for group, n in behind.items() if n]

    for topic in TOPICS:
        letters = await dead_letters(stack.bootstrap, f"{topic_prefix}{topic.name}.dlq")
        for name in topic.consumers:
            group = f"{services[name].env[name.upper() + '_GROUP_ID']}.{topic.name}"
            problems += await _check(topic.name, name, group, messages[topic.name], letters, conns[name])
    problems += await _members_flow_on(stack, topic_prefix, membership_conn, consent_conn, mailer_conn)
    problems += await _each_mail_sent_once(mailer_conn, smtp_sink)
    problems += await _due_campaigns_finish(mailer_conn)
    problems += [f"{name} exited:\n{s.tail()}" for name, s in services.items() if not s.running]

    summary = {t: Counter(m.outcome for m in ms) for t, ms in messages.items()}
    assert not problems, f"{len(problems)} problems (generated in {generated:.1f} s: {summary}):\n" + "\n".join(
        problems[:60]
    )


def _interleaved(messages: dict[str, list[Message]]) -> list[Message]:
    """All topics at once, each in its own order."""
    rounds = itertools.zip_longest(*messages.values())
    return [m for one_round in rounds for m in one_round if m is not None]


async def _check(
    topic: str,
    service: str,
    group: str,
    messages: list[Message],
    letters: dict[tuple[str, int, int], Any],
    conn: asyncpg.Connection,
) -> list[str]:
    problems: list[str] = []
    applied: dict[str, Message] = {}
    absent: dict[str, Message] = {}
    for m in messages:
        outcome = outcome_for(m, service)
        letter = letters.get((group, m.partition, m.offset))
        what = _what(topic, m, service)
        if outcome == "dlq" and letter is None:
            problems.append(f"{what}: invalid, but not in the DLQ")
        if outcome == "apply" and letter is not None:
            problems.append(f"{what}: valid, but dead-lettered: {letter.kind}: {letter.reason[:300]}")
        if letter is not None and not (letter.kind and letter.reason):
            problems.append(f"{what}: dead letter without a reason")
        if m.entity is None or m.duplicate_of is not None:
            continue
        (applied if outcome == "apply" else absent)[m.entity] = m
    effect = EFFECTS[(service, topic)]
    seen = await observed(conn, effect, [*applied, *absent])
    for entity, m in applied.items():
        assert m.event is not None
        want, got = effect.expected(m.event), seen.get(entity)
        if got != want:
            problems.append(
                f"{topic}#{m.n} ({m.kind} {m.detail}) at {service}: found {_short(got)}, expected {_short(want)}"
            )
    for entity, m in absent.items():
        if entity in seen:
            problems.append(f"{_what(topic, m, service)}: refused, yet it has an effect")
    return problems


def _what(topic: str, m: Message, service: str) -> str:
    return f"{topic}#{m.n}@{m.partition}:{m.offset} ({m.kind}{' ' + m.detail if m.detail else ''}) at {service}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 200 else text[:200] + "…"


async def _members_flow_on(
    stack: Stack, prefix: str, membership: asyncpg.Connection, consent: asyncpg.Connection, mailer: asyncpg.Connection
) -> list[str]:
    """The members membership made from the valid graduations are registered exactly once,
    reach consent and the mailer (sealed on the way), and those with an address the mail
    contract takes are invited exactly once."""
    await eventually(lambda: _outbox_empty(membership), what="membership's outbox published")
    await eventually(lambda: _outbox_empty(consent), what="consent's outbox published")
    rows = await membership.fetch("SELECT member_id::text, given_name, email FROM members")
    made = {r[0]: r[1] for r in rows}
    problems = []
    for topic, want in (
        ("member-registered", dict.fromkeys(made, 1)),
        ("transactional-mail-requested", _invited(rows)),
    ):
        records = await read_topic(stack.bootstrap, prefix + topic, 1_000_000, timeout=2)
        got = Counter(k for r in records if (k := (r.key or b"").decode(errors="replace")) in made)
        if got != Counter(want):
            wrong = [f"{m}: {got[m]}, not {want.get(m, 0)}" for m in made if got[m] != want.get(m, 0)]
            problems.append(f"{topic} from membership and consent: {len(wrong)} members wrong, e.g. {wrong[:3]}")
    for name, conn, table in (("consent", consent, "subjects"), ("mailer", mailer, "members")):
        found = await conn.fetch(
            f"SELECT member_id, given_name FROM {table} WHERE member_id = ANY($1::text[])", [*made]
        )
        copies = {r[0]: r[1] for r in found}
        if copies != made:
            missing = len(made.keys() - copies.keys())
            wrong_names = sum(1 for k in copies if copies[k] != made[k])
            problems.append(f"{name}: of {len(made)} members from graduations, {missing} missing, {wrong_names} differ")
    return problems


def _invited(members: list[asyncpg.Record]) -> dict[str, int]:
    """One invitation for each member whose address the mail contract accepts."""
    address = TypeAdapter(EmailStr)
    out = {}
    for member_id, _, email in members:
        try:
            if email is not None and address.validate_python(email):
                out[member_id] = 1
        except ValidationError:
            pass
    return out


async def _outbox_empty(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT count(*) FROM outbox") == 0)


async def _each_mail_sent_once(conn: asyncpg.Connection, sink: SmtpSink) -> list[str]:
    """Every queued mail (the fuzzer's requests and consent's invitations) leaves the queue
    (sent, skipped or failed: the sender is not stuck), and each one sent reached the SMTP
    server exactly once."""

    async def settled() -> list[asyncpg.Record] | None:
        rows = await conn.fetch("SELECT event_id, state, message_id FROM transactional")
        return rows if all(r["state"] not in ("pending", "sending") for r in rows) else None

    try:
        rows = await eventually(settled, timeout=60, what="the mail requests sent")
    except AssertionError as exc:
        return [f"transactional mail: {exc}"[:500]]
    delivered = Counter(m.parsed["Message-ID"] for m in sink.messages())
    return [
        f"transactional {r['event_id']}: sent, and at the SMTP server {delivered[r['message_id']]} times"
        for r in rows
        if r["state"] == "sent" and delivered[r["message_id"]] != 1
    ]


async def _due_campaigns_finish(conn: asyncpg.Connection) -> list[str]:
    """No due campaign is left scheduled or sending (its recipients have no consent: each is
    skipped, so every one finishes at once), whatever else the topic carried."""

    async def finished() -> bool:
        stuck = await conn.fetchval(
            "SELECT count(*) FROM campaigns WHERE status = 'sending' OR (status = 'scheduled' AND send_at <= now())"
        )
        return bool(stuck == 0)

    try:
        await eventually(finished, timeout=60, what="every due campaign finished")
    except AssertionError as exc:
        return [f"campaigns: {exc}"[:500]]
    return []
