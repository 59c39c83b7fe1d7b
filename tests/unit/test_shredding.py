"""Crypto-shredding: sealing, opening, tampering, erased keys, and the contracts' shape."""

from __future__ import annotations

import asyncio
import json
import typing
from datetime import date

import pytest
from pydantic import BaseModel

from alumni_kit.outbox import OutboxMessage
from alumni_kit.shredding import (
    ERASED,
    KeyId,
    KeyRequestRefusedError,
    SealedFieldError,
    SubjectKey,
    new_key,
    open_batch,
    open_event,
    seal_event,
)
from tests.e2e.graduations import graduation
from usn_schemas.envelope import personal_fields
from usn_schemas.member import MemberRegisteredV1, MemberSnapshot, Programme
from usn_schemas.registry import TOPIC_CONTRACTS

MEMBER = "6f1c2a4e-0000-4000-8000-000000000001"


def registered(email: str | None = "kari@example.org") -> MemberRegisteredV1:
    data = MemberSnapshot(
        member_id=MEMBER,
        student_number="123456",
        given_name="Kari Æsa",
        family_name="Nordmann",
        email=email,
        phone=None,
        faculties=["HH"],
        programmes=[
            Programme(programme_code="BØK", faculty="HH", degree_level="bachelor", graduation_date=date(2020, 6, 15))
        ],
    )
    return MemberRegisteredV1.create(subject=MEMBER, data=data, source="/test")


class StaticKeyRing:
    def __init__(self, *keys: SubjectKey) -> None:
        self.secrets: dict[KeyId, bytes] = {k.id: k.secret for k in keys}

    async def lookup(self, wanted: set[KeyId]) -> dict[KeyId, bytes]:
        return {k: s for k, s in self.secrets.items() if k in wanted}

    async def current(self, subject_ids: set[str]) -> dict[str, SubjectKey]:
        return {}


def test_sealed_event_holds_no_personal_data_and_opens_to_the_original() -> None:
    key = new_key(MEMBER)
    event = registered()
    raw = seal_event(event, key)
    for secret in (b"Kari", b"Nordmann", b"kari@example.org", b"123456", "Æsa".encode()):
        assert secret not in raw
    assert b"B\xc3\x98K" not in raw  # programmes too: with campus and date they can single her out
    assert json.loads(raw)["data"]["faculties"] == ["HH"]  # what is not personal stays readable
    opened = open_event(raw, {key.id: key.secret})
    assert opened is not None
    assert MemberRegisteredV1.model_validate_json(opened) == event


def test_absent_fields_stay_absent() -> None:
    raw = seal_event(registered(email=None), new_key(MEMBER))
    assert json.loads(raw)["data"].get("email") is None


def test_a_deleted_key_leaves_the_event_unreadable() -> None:
    raw = seal_event(registered(), new_key(MEMBER))
    assert open_event(raw, {}) is ERASED


def test_another_subjects_key_or_a_moved_token_fails_authentication() -> None:
    key = new_key(MEMBER)
    doc = json.loads(seal_event(registered(), key))
    doc["data"]["family_name"], doc["data"]["given_name"] = doc["data"]["given_name"], doc["data"]["family_name"]
    with pytest.raises(SealedFieldError):
        open_event(json.dumps(doc).encode(), {key.id: key.secret})
    forged = SubjectKey(MEMBER, 1, new_key(MEMBER).secret)
    with pytest.raises(SealedFieldError):
        open_event(seal_event(registered(), key), {forged.id: forged.secret})


def test_open_batch_sorts_plain_sealed_erased_and_broken() -> None:
    key, gone = new_key(MEMBER), new_key("6f1c2a4e-0000-4000-8000-000000000002")
    plain = registered().to_json()
    broken = seal_event(registered(), key).replace(b'"pd1.' + MEMBER.encode() + b".1.", b'"pd1.no-version', 1)
    values: list[bytes | None] = [plain, seal_event(registered(), key), seal_event(registered(), gone), broken, None]
    out = asyncio.run(open_batch(values, StaticKeyRing(key)))
    assert out[0] == plain
    assert isinstance(out[1], bytes)
    assert b"Nordmann" in out[1]
    assert out[2] is ERASED
    assert isinstance(out[3], SealedFieldError)
    assert out[4] is None


def test_personal_data_cannot_leave_unsealed() -> None:
    with pytest.raises(ValueError, match="must be sealed"):
        OutboxMessage(topic="member-registered", key=MEMBER, event=registered())
    sealed = OutboxMessage(topic="member-registered", key=MEMBER, event=registered(), seal=new_key(MEMBER))
    assert b"Nordmann" not in sealed.record()[2]


def _nested_models(annotation: object) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found.append(annotation)
    for arg in typing.get_args(annotation):
        found += _nested_models(arg)
    return found


@pytest.mark.parametrize("topic", sorted(TOPIC_CONTRACTS))
def test_personal_data_sits_at_the_top_level_of_data(topic: str) -> None:
    """Sealing covers the top level of `data` only, so no nested model may hold personal data."""
    for contract in TOPIC_CONTRACTS[topic].values():
        data_model = contract.model_fields["data"].annotation
        assert isinstance(data_model, type)
        assert issubclass(data_model, BaseModel)
        for field in data_model.model_fields.values():
            for nested in _nested_models(field.annotation):
                assert not personal_fields(nested), f"{topic}: {nested.__name__} holds personal data below the top"


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("pd1.x.1.AAAA", "no valid subject id"),
        (f"pd1.{MEMBER.upper()}.1.AAAA", "no valid subject id"),
        (f"pd1.{MEMBER}.0.{'A' * 40}", "out of range"),
        (f"pd1.{MEMBER}.2147483648.{'A' * 40}", "out of range"),
        (f"pd1.{MEMBER}.-1.{'A' * 40}", "out of range"),
        (f"pd1.{MEMBER}.1.{'A' * 39}=", "not base64url"),
        (f"pd1.{MEMBER}.1.{'A' * 41}", "not base64url"),  # 41 % 4 == 1: no whole byte
        (f"pd1.{MEMBER}.1.AAAA+AAA", "not base64url"),
        (f"pd1.{MEMBER}.1.AAAA", "too short"),
        (f"pd1.{MEMBER}.1", "malformed"),
    ],
)
def test_a_malformed_token_is_the_messages_fault_before_any_key_lookup(token: str, why: str) -> None:
    doc = json.loads(seal_event(registered(), new_key(MEMBER)))
    doc["data"]["given_name"] = token
    ring = CountingKeyRing()
    [out] = asyncio.run(open_batch([json.dumps(doc).encode()], ring, TOPIC_CONTRACTS["member-registered"]))
    assert isinstance(out, SealedFieldError)
    assert why in str(out)
    assert "pd1" not in str(out)  # the reason never quotes the token


def test_a_graduation_whose_name_looks_like_a_token_is_data() -> None:
    """FS publishes in the clear: `graduated` is never opened, whatever its values look like."""
    event = graduation("look-alike", "5550001", given_name="pd1.x.1.AAAA")
    event["data"]["family_name"] = f"pd1.{MEMBER}.1.{'A' * 40}"
    raw = json.dumps(event).encode()
    ring = CountingKeyRing()
    assert asyncio.run(open_batch([raw], ring, TOPIC_CONTRACTS["graduated"])) == [raw]
    assert asyncio.run(open_batch([raw], ring)) == [raw]  # by type, with every registered contract
    assert ring.lookups == 0


def test_only_declared_personal_fields_are_opened() -> None:
    """A token-like value in a field that is not personal data stays as it is."""
    key = new_key(MEMBER)
    doc = json.loads(seal_event(registered(), key))
    doc["data"]["faculties"] = ["pd1.x.1.AAAA"]
    doc["source"] = "pd1.x.1.AAAA"
    [out] = asyncio.run(open_batch([json.dumps(doc).encode()], StaticKeyRing(key)))
    assert isinstance(out, bytes)
    opened = json.loads(out)
    assert opened["data"]["given_name"] == "Kari Æsa"
    assert opened["source"] == "pd1.x.1.AAAA"
    assert opened["data"]["faculties"] == ["pd1.x.1.AAAA"]


def test_a_key_request_the_key_service_refuses_marks_only_the_messages_it_concerns() -> None:
    key, refused = new_key(MEMBER), new_key("6f1c2a4e-0000-4000-8000-00000000000f")
    ring = RefusingKeyRing(refused.subject_id, key)
    values: list[bytes | None] = [seal_event(registered(), key), seal_event(registered_as(refused), refused)]
    out = asyncio.run(open_batch(values, ring))
    assert isinstance(out[0], bytes)
    assert b"Nordmann" in out[0]
    assert isinstance(out[1], SealedFieldError)
    assert "refused" in str(out[1])


def registered_as(key: SubjectKey) -> MemberRegisteredV1:
    event = registered()
    return event.model_copy(update={"subject": key.subject_id})


class CountingKeyRing(StaticKeyRing):
    lookups = 0

    async def lookup(self, wanted: set[KeyId]) -> dict[KeyId, bytes]:
        self.lookups += 1
        return await super().lookup(wanted)


class RefusingKeyRing(StaticKeyRing):
    """Answers as the key service does when a request names a subject it refuses (HTTP 4xx)."""

    def __init__(self, refused_subject: str, *keys: SubjectKey) -> None:
        super().__init__(*keys)
        self.refused = refused_subject

    async def lookup(self, wanted: set[KeyId]) -> dict[KeyId, bytes]:
        if any(subject == self.refused for subject, _ in wanted):
            raise KeyRequestRefusedError("HTTP 422")
        return await super().lookup(wanted)
