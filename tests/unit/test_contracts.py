"""Every recorded example payload keeps parsing; the pinned graduated v1 rules hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from usn_schemas import personal_fields
from usn_schemas.envelope import ContractError, parse_envelope
from usn_schemas.graduated import GraduatedData, GraduatedV1
from usn_schemas.member import MemberSnapshot
from usn_schemas.registry import TOPIC_CONTRACTS

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
ALL_EXAMPLES = sorted(EXAMPLES.glob("*/*.json"))


def test_every_topic_has_recorded_examples() -> None:
    assert {p.parent.name for p in ALL_EXAMPLES} == set(TOPIC_CONTRACTS)


@pytest.mark.parametrize("path", ALL_EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recorded_examples_parse_and_round_trip(path: Path) -> None:
    raw = path.read_bytes()
    event = parse_envelope(raw, TOPIC_CONTRACTS[path.parent.name])
    again = parse_envelope(event.to_json(), TOPIC_CONTRACTS[path.parent.name])
    assert again == event


def _example(name: str = "v1-full.json") -> dict[str, Any]:
    return json.loads((EXAMPLES / "graduated" / name).read_text())


def _parse(doc: dict[str, Any]) -> GraduatedV1:
    event = parse_envelope(json.dumps(doc).encode(), TOPIC_CONTRACTS["graduated"])
    assert isinstance(event, GraduatedV1)
    return event


def test_unknown_fields_are_ignored_and_unicode_names_kept() -> None:
    event = _parse(_example("v1-unknown-fields.json"))
    assert event.data.given_name == "Hélène"
    assert "fs_internal_flag" not in event.data.model_dump()


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("graduation_date", "2024-6-1", "YYYY-MM-DD"),
        ("graduation_date", 1718000000, "YYYY-MM-DD"),
        ("graduation_date", "2024-02-30", "graduation_date"),
        ("faculty", "USN", "faculty"),
        ("degree_level", "diploma", "degree_level"),
        ("given_name", "", "given_name"),
    ],
)
def test_invalid_required_fields_are_refused_with_the_field_named(field: str, value: object, reason: str) -> None:
    doc = _example()
    doc["data"][field] = value
    with pytest.raises(ContractError) as caught:
        _parse(doc)
    assert caught.value.kind == "invalid"
    assert reason in caught.value.reason


def test_reasons_never_echo_values() -> None:
    doc = _example()
    doc["data"]["given_name"] = {"secret": "Ødegård"}
    with pytest.raises(ContractError) as caught:
        _parse(doc)
    assert "Ødegård" not in caught.value.reason


def test_subject_must_be_the_student_number() -> None:
    doc = _example()
    doc["subject"] = "someone-else"
    with pytest.raises(ContractError, match="subject"):
        _parse(doc)


@pytest.mark.parametrize(
    ("field", "value"), [("email", "no-at-sign"), ("phone", "91234567"), ("credits", "lots"), ("credits", True)]
)
def test_invalid_optional_fields_are_dropped_and_recorded(field: str, value: object) -> None:
    doc = _example()
    doc["data"][field] = value
    event = _parse(doc)
    assert getattr(event.data, field) is None
    assert [d.field for d in event.data.defects] == [field]
    assert "defects" not in json.loads(event.to_json())["data"]


def test_too_large_and_wrong_version_messages_are_refused() -> None:
    doc = _example()
    doc["data"]["padding"] = "x" * 70_000
    with pytest.raises(ContractError) as big:
        _parse(doc)
    assert big.value.kind == "too-large"
    doc = _example()
    doc["type"] = "no.usn.fs.graduated.v2"
    with pytest.raises(ContractError) as v2:
        _parse(doc)
    assert v2.value.kind == "unknown-type"


def test_personal_data_is_marked_in_models_and_schema() -> None:
    assert personal_fields(GraduatedData) == {"given_name", "family_name", "email", "phone"}
    assert {"student_number", "given_name", "family_name", "email", "phone"} <= personal_fields(MemberSnapshot)
    schema = GraduatedData.model_json_schema()
    assert schema["properties"]["email"]["x-personal-data"] is True
    assert "defects" not in schema["properties"]


def test_new_ids_are_valid_random_uuids() -> None:
    import uuid

    from usn_schemas.ids import new_id

    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:200]:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


def test_a_producer_cannot_inject_defects() -> None:
    doc = _example()
    doc["data"]["defects"] = [{"field": "email", "reason": "forged"}]
    event = _parse(doc)
    assert event.data.defects == ()
    assert event.data.email == "ase.odegard@example.no"
