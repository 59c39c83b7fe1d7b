"""What the topic fuzzer publishes: per consumed topic, a deterministic list of messages
drawn with Hypothesis, each with the outcome the platform's rules call for.

A message is one of: a valid event (a recorded example from schemas/examples with
fresh ids and random values the contract allows), a byte-identical repeat of an
earlier one, an example with one envelope or data field set to a hostile value or
removed, another or an unknown version of the type, unknown extra fields, random
bytes, invalid UTF-8, random JSON, or no value at all.

The expected outcome is decided here, apart from the services: the contract
(parse_envelope, the same code the consumers run) says valid or not; a sealed
field holding a token-shaped value on a topic whose producer seals is never
applied (its key is not found: dead-lettered or skipped as erased); the rest of
what a handler refuses by rule (a campaign's purpose) is listed per topic.
"""

from __future__ import annotations

import copy
import json
import string
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from tests.fuzz.values import RawJson, aware_datetimes, big_or_deep, dumps, fixed_uuid, free_text, nasty, random_json
from usn_schemas.envelope import (
    ContractError,
    is_binary_mode,
    parse_envelope,
    personal_fields,
    structured_from_binary,
)
from usn_schemas.registry import TOPIC_CONTRACTS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "schemas" / "examples"
Outcome = Literal["apply", "dlq", "never-applied"]
DELETE = object()  # a mutation that removes the field
# Topics whose producers seal personal data (membership and consent seal at the outbox).
SEALED_TOPICS = frozenset({"member-registered", "member-updated", "transactional-mail-requested"})
LATER = "2100-01-01T07:00:00Z"  # a campaign scheduled, not yet due
MAILER_PURPOSES = ("newsletter", "events", "evu", "research", "career")  # the mailer's default list
FACULTIES = ["HH", "TNM", "HS", "HIU"]
# Campaign bodies that compile but fail or explode when rendered: the campaign fails, alone.
BAD_TEMPLATES = (
    "Hei {{ 1/0 }}",
    "{{ given_name.__class__.__mro__ }}",
    "{{ range(100001) | list }}",
    "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}",
    "{{ given_name",
    "{{ 'x' * 100000000 }}",
)
LEVELS = ["bachelor", "master", "phd", "evu", "exchange", "other"]


@dataclass
class Message:
    """One generated message, where it landed, and what should become of it."""

    topic: str
    n: int
    kind: str
    key: bytes | None
    value: bytes | None
    doc: dict[str, Any] | None  # the event as built (None for bytes that are not one)
    entity: str | None  # the id its effect is found under; None when a mutation changed it
    outcome: Outcome = "apply"
    # The event as the contract reads it (defaults filled in, lax values converted), for an applied one.
    event: dict[str, Any] | None = None
    partition: int = -1
    offset: int = -1
    duplicate_of: int | None = None
    headers: list[tuple[str, bytes]] | None = None
    detail: str = ""  # what was changed, for the failure report (synthetic data only)


@dataclass(frozen=True)
class Draft:
    """What Hypothesis drew; `Topic.build` turns it into a Message with fresh ids."""

    kind: str
    example: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)
    path: tuple[str | int, ...] = ()
    value: Any = None
    raw: bytes | None = None
    header: tuple[str, bytes] | None = None  # binary mode: one attribute header replaced


def _example(topic: str, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EXAMPLES / topic / name).read_text())
    return doc


def _iso(d: date | datetime) -> str:
    return d.isoformat()


sane_datetimes = st.datetimes(min_value=datetime(1950, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC))
sane_dates = st.dates(min_value=date(1950, 1, 1), max_value=date(2200, 1, 1))
purposes = st.from_regex(r"\A[a-z][a-z0-9-]{1,39}\Z")


def _text(max_size: int) -> st.SearchStrategy[str]:
    return free_text.filter(lambda s: 0 < len(s) <= max_size)


def _opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


programme = st.fixed_dictionaries(
    {
        "programme_code": _text(64),
        "faculty": st.sampled_from(FACULTIES),
        "degree_level": st.sampled_from(LEVELS),
        "graduation_date": sane_dates.map(_iso),
    },
    optional={"programme_name": _opt(_text(300)), "campus": _opt(_text(300)), "credits": _opt(st.floats(0, 1000))},
)

VALID: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "graduated": st.fixed_dictionaries(
        {},
        optional={
            "given_name": _text(200),
            "family_name": _text(200),
            "programme_code": _text(64),
            "faculty": st.sampled_from(FACULTIES),
            "degree_level": st.sampled_from(LEVELS),
            "graduation_date": sane_dates.map(_iso),
            # Optional fields: an invalid value is dropped and recorded, never fatal.
            "email": _opt(st.one_of(st.emails(), nasty)),
            "phone": _opt(st.one_of(st.from_regex(r"\A\+[1-9]\d{6,14}\Z"), nasty)),
            "credits": _opt(nasty),
            "campus": _opt(nasty),
            "programme_name": _opt(nasty),
        },
    ),
    "member": st.fixed_dictionaries(
        {},
        optional={
            "given_name": _text(200),
            "family_name": _text(200),
            "email": _opt(st.emails()),
            "phone": _opt(_text(40)),
            "student_number": _opt(_text(32)),
            "status": st.sampled_from(["pre-alumni", "alumni", "associate"]),
            "language": st.sampled_from([None, "nb", "en"]),
            "faculties": st.lists(st.sampled_from(FACULTIES), max_size=4, unique=True),
            "programmes": st.lists(programme, max_size=3),
            "changed": st.lists(st.sampled_from(["email", "programmes", "given_name", "status"]) | _text(20)),
        },
    ),
    "member-erased": st.fixed_dictionaries(
        {},
        optional={
            "erased_at": sane_datetimes.map(_iso),
            "requested_by": st.sampled_from(["member", "staff"]),
        },
    ),
    "consent": st.fixed_dictionaries(
        {},
        optional={
            "channel": st.sampled_from(["email", "sms"]),
            "purpose": purposes,
            "state": st.sampled_from(["given", "withdrawn"]),
            "source": st.sampled_from(["preference-centre", "one-click-unsubscribe", "import", "staff"]),
            "method": _text(200),
            "notice_version": _opt(_text(40)),
            "notice_sha256": _opt(st.text("0123456789abcdef", min_size=64, max_size=64)),
            "sequence": st.integers(1, 2**62),
            "recorded_at": sane_datetimes.map(_iso),
        },
    ),
    # The events service's own facts, read back by its mail and invitation stages.
    "event-fact": st.fixed_dictionaries({}, optional={"at": sane_datetimes.map(_iso)}),
    "registration-fact": st.fixed_dictionaries(
        {},
        optional={
            "status": st.sampled_from(["registered", "waitlisted", "offered", "cancelled", "expired", "attended"]),
            "waitlist_position": _opt(st.integers(1, 10_000)),
            "reason": _opt(st.sampled_from(["member", "declined", "erased", "expired"]) | _text(40)),
            "at": sane_datetimes.map(_iso),
        },
    ),
    "transactional-mail-requested": st.fixed_dictionaries(
        {},
        optional={
            "kind": st.sampled_from(
                ["consent-invitation", "consent-confirmation", "magic-link", "email-verification", "event-confirmation"]
            ),
            "to_address": st.emails(),
            "to_name": _opt(_text(200)),
            "language": st.sampled_from(["nb", "en"]),
            "subject": _text(200),
            "body_text": _text(20_000),
            "action_url": _opt(_text(2000)),
            "action_label": _opt(_text(100)),
            # Mostly in the future (sent); some past (not worth sending any more).
            "expires_at": _opt(
                st.datetimes(
                    min_value=datetime(2020, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
                ).map(_iso)
            ),
        },
    ),
    "campaigns": st.fixed_dictionaries(
        {},
        optional={
            "requested_by": _text(200),
            "faculty": st.sampled_from(["HH", "TNM", "HS", "HIU", "USN"]),
            "purpose": st.one_of(st.sampled_from(MAILER_PURPOSES), purposes),
            "subject": _text(300),
            "body_markdown": st.one_of(
                _text(2000), _text(200).map(lambda s: "Hei {{ given_name }}!\n\n" + s), st.sampled_from(BAD_TEMPLATES)
            ),
            "language": st.sampled_from(["nb", "en"]),
            # Mostly later (scheduled); some due now or past (sent at once: audiences resolved).
            "send_at": st.one_of(
                *[st.just(LATER)] * 3, _opt(aware_datetimes.filter(lambda d: 1950 < d.year < 2200).map(_iso))
            ),
            "track_opens": st.booleans(),
            "audience": st.fixed_dictionaries(
                {},
                optional={
                    "faculties": st.lists(st.sampled_from(FACULTIES), max_size=4),
                    "degree_levels": st.lists(st.sampled_from(LEVELS), max_size=4),
                    "graduation_year_from": st.integers(1900, 2200),
                },
            ),
        },
    ),
}


@dataclass(frozen=True)
class Topic:
    """A consumed topic: its examples, how a message gets fresh ids, who consumes it."""

    name: str
    examples: tuple[str, ...]
    valid: str  # key of VALID
    freshen: Callable[[dict[str, Any], int], tuple[str, str]]  # sets ids in place; (key, entity)
    consumers: tuple[str, ...]
    entity_path: tuple[str, ...]
    # Fewer than the suite's count (the events service's own facts: six topics that share one
    # consumer, each message handled the same way), to keep the run short.
    most: int | None = None

    @property
    def event_type(self) -> str:
        return next(iter(TOPIC_CONTRACTS[self.name]))

    def base(self, index: int) -> dict[str, Any]:
        return _example(self.name, self.examples[index])

    def paths(self, doc: dict[str, Any], kind: str) -> list[tuple[str | int, ...]]:
        """The envelope's fields, or every field of `data` one level into lists and objects."""
        out: list[tuple[str | int, ...]] = []
        if kind == "envelope-field":
            return [*((k,) for k in doc if k != "data"), ("data",)]
        for k, v in doc["data"].items():
            out.append(("data", k))
            if isinstance(v, dict):
                out += [("data", k, inner) for inner in v]
            if isinstance(v, list) and v and isinstance(v[0], dict):
                out += [("data", k, 0, inner) for inner in v[0]]
        return out


def _graduated(doc: dict[str, Any], n: int) -> tuple[str, str]:
    sn = f"9{n:06d}"
    doc["id"], doc["subject"], doc["data"]["student_number"] = f"fz-graduated-{n}", sn, sn
    return sn, sn


def _by_member(space: int) -> Callable[[dict[str, Any], int], tuple[str, str]]:
    def freshen(doc: dict[str, Any], n: int) -> tuple[str, str]:
        member = fixed_uuid(space, n)
        doc["id"] = fixed_uuid(space + 1, n)
        doc["subject"] = doc["data"]["member_id"] = member
        if "fact_id" in doc["data"]:
            doc["data"]["fact_id"] = doc["id"]
        return member, member

    return freshen


def _transactional(doc: dict[str, Any], n: int) -> tuple[str, str]:
    member = fixed_uuid(0x7A, n)
    doc["id"] = fixed_uuid(0x7B, n)
    doc["subject"] = doc["data"]["member_id"] = member
    return member, doc["id"]


def _campaign(doc: dict[str, Any], n: int) -> tuple[str, str]:
    campaign = f"fz-campaign-{n}"
    doc["id"] = fixed_uuid(0x8B, n)
    doc["subject"] = doc["data"]["campaign_id"] = campaign
    doc["data"]["send_at"] = LATER  # the examples' dates are fixed; a valid draw may set another
    return campaign, campaign


def _event_fact(space: int) -> Callable[[dict[str, Any], int], tuple[str, str]]:
    """A fact about an event the service does not have: its stages read it, find nothing to
    mail, and record it as processed (the inbox is its one effect)."""

    def freshen(doc: dict[str, Any], n: int) -> tuple[str, str]:
        event_id = fixed_uuid(space, n)
        doc["id"] = fixed_uuid(space + 1, n)
        doc["subject"] = doc["data"]["event_id"] = event_id
        if "registration_id" in doc["data"]:
            doc["data"]["registration_id"] = fixed_uuid(space + 2, n)
            doc["data"]["member_id"] = fixed_uuid(space + 3, n)
        return event_id, doc["id"]

    return freshen


# What events consumes of its own facts (events/mail/wiring.py, events/invitations/).
EVENTS_OWN_FACTS = (
    ("event-published", "event-fact"),
    ("event-updated", "event-fact"),
    ("event-cancelled", "event-fact"),
    ("event-registered", "registration-fact"),
    ("event-offer-made", "registration-fact"),
    ("event-registration-cancelled", "registration-fact"),
)
EVENTS_FACTS_PER_TOPIC = 60

MEMBER_EXAMPLES = ("v1.json", "v1-associate.json", "v1-pre-alumni.json")
TOPICS: tuple[Topic, ...] = (
    Topic(
        "graduated",
        ("v1-full.json", "v1-minimal.json", "v1-unknown-fields.json"),
        "graduated",
        _graduated,
        ("membership",),
        ("data", "student_number"),
    ),
    Topic(
        "member-registered", MEMBER_EXAMPLES, "member", _by_member(0x1A), ("consent", "mailer"), ("data", "member_id")
    ),
    Topic(
        "member-updated",
        ("v1.json", "v1-pre-alumni-graduated.json"),
        "member",
        _by_member(0x2A),
        ("consent", "mailer"),
        ("data", "member_id"),
    ),
    Topic(
        "member-erased",
        ("v1.json",),
        "member-erased",
        _by_member(0x3A),
        ("consent", "mailer", "events"),
        ("data", "member_id"),
    ),
    Topic(
        "consent-given",
        ("v1-double-opt-in.json", "v1-staff.json"),
        "consent",
        _by_member(0x4A),
        ("membership", "mailer"),
        ("data", "member_id"),
    ),
    Topic(
        "consent-withdrawn",
        ("v1-one-click.json",),
        "consent",
        _by_member(0x5A),
        ("membership", "mailer"),
        ("data", "member_id"),
    ),
    Topic(
        "transactional-mail-requested",
        ("v1-confirmation.json", "v1-magic-link.json"),
        "transactional-mail-requested",
        _transactional,
        ("mailer",),
        ("id",),
    ),
    Topic(
        "campaigns",
        ("v1-faculty-newsletter.json", "v1-minimal.json"),
        "campaigns",
        _campaign,
        ("mailer",),
        ("data", "campaign_id"),
    ),
)
TOPICS += tuple(
    Topic(name, ("v1.json",), valid, _event_fact(0xE0 + 4 * i), ("events",), ("id",), most=EVENTS_FACTS_PER_TOPIC)
    for i, (name, valid) in enumerate(EVENTS_OWN_FACTS)
)
BY_NAME = {t.name: t for t in TOPICS}

OTHER_TYPES = sorted({t for contracts in TOPIC_CONTRACTS.values() for t in contracts})
KINDS = ["valid"] * 8 + ["repeat"] + ["data-field"] * 6 + ["envelope-field"] * 3 + ["type"] * 2
KINDS += ["garbage"] * 2 + ["json", "extra", "big"] + ["binary"] * 2
BINARY_ATTRIBUTES = ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject", "content-type"]


def _drafts(topic: Topic) -> st.SearchStrategy[Draft]:
    """One message's draft; the strategies are built once (a flatmap that builds
    new ones per draw makes Hypothesis validate them each time)."""
    examples = st.integers(0, len(topic.examples) - 1)
    index = st.integers(0, 10_000)  # which field: taken modulo the example's fields in `build`
    version = st.sampled_from([".v0", ".v2", ".v10", "", ".V1", ".v1 ", ".v1.1"])
    other_type = st.one_of(
        st.sampled_from(OTHER_TYPES),
        version.map(lambda v: topic.event_type.rsplit(".", 1)[0] + v),
        st.text(max_size=40),
        nasty,
    )
    extra = st.dictionaries(st.text(string.ascii_lowercase + "_", min_size=1, max_size=12), nasty, max_size=4)
    not_an_event = st.one_of(
        random_json, st.dictionaries(st.sampled_from(["specversion", "type", "id", "data"]), random_json)
    ).map(dumps)
    garbage = st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=100).map(lambda b: b"\xff\xfe" + b + b"\xc3"),  # never UTF-8
        st.text(max_size=200).map(str.encode),
        st.just(b""),
        st.none(),
    )
    hostile = st.one_of(nasty, st.just(DELETE))
    header = st.sampled_from(BINARY_ATTRIBUTES)
    header_value = st.one_of(nasty.map(lambda v: str(v).encode(errors="surrogatepass")), st.binary(max_size=20))
    by_kind: dict[str, st.SearchStrategy[Draft]] = {
        "valid": st.builds(Draft, st.just("valid"), examples, VALID[topic.valid]),
        "repeat": st.builds(Draft, st.just("repeat"), examples, VALID[topic.valid]),
        "data-field": st.builds(
            lambda e, i, v: Draft("data-field", e, path=(i,), value=v),
            examples,
            index,
            hostile,
        ),
        "envelope-field": st.builds(
            lambda e, i, v: Draft("envelope-field", e, path=(i,), value=v),
            examples,
            index,
            hostile,
        ),
        "big": st.builds(lambda e, i, v: Draft("big", e, path=(i,), value=v), examples, index, big_or_deep),
        "type": st.builds(lambda e, t: Draft("type", e, path=("type",), value=t), examples, other_type),
        "extra": st.builds(lambda e, x: Draft("extra", e, overrides=x), examples, extra),
        "json": st.builds(lambda raw: Draft("json", raw=raw), not_an_event),
        "garbage": st.builds(lambda raw: Draft("garbage", raw=raw), garbage),
        # CloudEvents binary content mode: attributes in ce_* headers, data as the value;
        # valid, or with one attribute header set to something hostile.
        "binary": st.builds(
            lambda e, o, h: Draft("binary", e, overrides=o, header=h),
            examples,
            VALID[topic.valid],
            st.one_of(st.none(), st.tuples(header, header_value)),
        ),
    }
    return st.sampled_from(KINDS).flatmap(by_kind.__getitem__)


BATCH = 25  # drafts per Hypothesis example: the engine's cost is per example


def draw_drafts(topic: Topic, count: int) -> list[Draft]:
    """`count` drafts for `topic`: Hypothesis with a fixed seed, so every run sends the same."""
    drawn: list[Draft] = []

    # A seed of its own per topic (derandomize would give topics with alike strategies
    # the same draws); no example database: every run sends the same.
    @seed(zlib.crc32(topic.name.encode()))
    @settings(
        max_examples=-(-count // BATCH),
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(_drafts(topic), min_size=BATCH, max_size=BATCH))
    def collect(drafts: list[Draft]) -> None:
        drawn.extend(drafts)

    collect()
    return drawn[:count]


def build(topic: Topic, drafts: list[Draft]) -> list[Message]:
    """The messages of `drafts`, in order, each with fresh ids and its expected outcome."""
    out: list[Message] = []
    valid_so_far: list[Message] = []
    used_ids: set[Any] = set()
    for n, draft in enumerate(drafts):
        if draft.kind in ("garbage", "json"):
            # Some without a key (any partition); a message without a value needs one.
            key = None if n % 3 and draft.raw is not None else f"fz-{n}".encode()
            message = Message(topic.name, n, draft.kind, key, draft.raw, None, None)
        elif draft.kind == "repeat" and valid_so_far:
            first = valid_so_far[n % len(valid_so_far)]
            message = copy.copy(first)
            message.n, message.kind, message.duplicate_of, message.detail = n, "repeat", first.n, f"of #{first.n}"
        else:
            message = _event_message(topic, n, draft, used_ids)
        if message.duplicate_of is None:
            message.outcome, message.event = expected_outcome(topic.name, message.value, message.headers)
        if message.outcome == "apply" and draft.kind in ("valid", "repeat"):
            valid_so_far.append(message)
        out.append(message)
    return out


def _event_message(topic: Topic, n: int, draft: Draft, used_ids: set[Any]) -> Message:
    doc = topic.base(draft.example)
    subject_key, entity = topic.freshen(doc, n)
    entity_or_none: str | None = entity
    detail = ""
    if draft.kind in ("valid", "repeat", "binary"):
        doc["data"].update(copy.deepcopy(draft.overrides))
        if topic.name == "member-updated":
            doc["data"].setdefault("changed", ["programmes"])
    elif draft.kind == "extra":
        doc["data"].update(draft.overrides)
        doc.update({f"x{k}": v for k, v in draft.overrides.items()})
    else:
        path = draft.path if draft.kind == "type" else _pick(topic.paths(doc, draft.kind), draft.path[0])
        _set(doc, path, draft.value)
        detail = f"{'.'.join(map(str, path))}={'(removed)' if draft.value is DELETE else _short(draft.value)}"
        if path == topic.entity_path or path[:1] == topic.entity_path[:1] == ("id",):
            entity_or_none = None
    # Each message its own event id: two that share one are one event to the inbox.
    if isinstance(doc.get("id"), str | int) and doc["id"] in used_ids:
        doc["id"] = f"{doc['id']}~{n}"
    used_ids.add(doc.get("id") if isinstance(doc.get("id"), str | int) else None)
    message = Message(topic.name, n, draft.kind, subject_key.encode(), dumps(doc), doc, entity_or_none, detail=detail)
    if draft.kind == "binary":
        header = draft.header
        if header is not None and header[0] == "ce_id":
            header = ("ce_id", header[1] + f"~{n}".encode())  # its own id still (see above)
            message.entity = None if topic.entity_path == ("id",) else message.entity
        message.value, message.headers = _binary(doc, header)
        message.detail = f"header {header[0]}={_short(header[1])}" if header else "binary mode"
    return message


def _binary(doc: dict[str, Any], replaced: tuple[str, bytes] | None) -> tuple[bytes | None, list[tuple[str, bytes]]]:
    """`doc` in CloudEvents binary content mode: attributes as ce_* headers, data as the value."""
    headers = [(f"ce_{k}", str(v).encode()) for k, v in doc.items() if k not in ("data", "datacontenttype")]
    headers.append(("content-type", b"application/json"))
    if replaced is not None:
        headers = [(k, replaced[1] if k == replaced[0] else v) for k, v in headers]
    return dumps(doc["data"]), headers


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:80]}… ({len(text)} characters)"


def _pick(paths: list[tuple[str | int, ...]], index: Any) -> tuple[str | int, ...]:
    return paths[int(index) % len(paths)]


def _set(doc: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    *parents, last = path
    target: Any = doc
    for step in parents:
        target = target[step]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value


def expected_outcome(
    topic: str, value: bytes | None, headers: list[tuple[str, bytes]] | None = None
) -> tuple[Outcome, dict[str, Any] | None]:
    """What the platform's rules say becomes of `value` on `topic` (for every consumer,
    before per-service rules such as the mailer's purposes), and the event as read."""
    contracts = TOPIC_CONTRACTS[topic]
    try:
        if headers is not None and is_binary_mode(headers):
            value = structured_from_binary(headers, value)
        if value is None:
            return "dlq", None
        if topic in SEALED_TOPICS and _holds_token(value, contracts):
            return "never-applied", None
        event = parse_envelope(value, contracts)
    except ContractError:
        return "dlq", None
    return "apply", event.model_dump(mode="python")


def _holds_token(value: bytes, contracts: dict[str, Any]) -> bool:
    try:
        doc = json.loads(value)
    except (ValueError, RecursionError):
        return False
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        return False
    sealed: set[str] = set()
    for contract in contracts.values():
        sealed |= personal_fields(contract.model_fields["data"].annotation)
    return any(isinstance(data.get(f), str) and data[f].startswith("pd1.") for f in sealed)


def outcome_for(message: Message, service: str) -> Outcome:
    """The outcome at one consumer: the mailer refuses campaigns for purposes it does not know."""
    if service == "mailer" and message.topic == "campaigns" and message.outcome == "apply":
        assert message.event is not None
        if message.event["data"]["purpose"] not in MAILER_PURPOSES:
            return "dlq"
    return message.outcome


def generate(count: int) -> dict[str, list[Message]]:
    return {t.name: build(t, draw_drafts(t, min(count, t.most or count))) for t in TOPICS}


__all__ = ["BY_NAME", "TOPICS", "Message", "RawJson", "generate", "outcome_for"]
