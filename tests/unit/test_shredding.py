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
    SealedFieldError,
    SubjectKey,
    new_key,
    open_batch,
    open_event,
    seal_event,
)
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
