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


# Found by the topic fuzzer (tests/fuzz): values the contracts' types accepted but that
# failed later, at every consumer's database, as processing errors after retries.


def _recorded(topic: str, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EXAMPLES / topic / name).read_text())
    return doc


def _refusal(topic: str, doc: dict[str, Any]) -> ContractError:
    with pytest.raises(ContractError) as caught:
        parse_envelope(json.dumps(doc).encode(), TOPIC_CONTRACTS[topic])
    return caught.value


@pytest.mark.parametrize(
    ("topic", "example", "field", "value", "reason"),
    [
        ("graduated", "v1-full.json", "family_name", "Nord\x00mann", "data.family_name: text may not contain U+0000"),
        ("graduated", "v1-full.json", "campus", "x\udfffy", "data.campus: text may not contain an unpaired surrogate"),
        ("consent-given", "v1-staff.json", "fact_id", "\ud800", "data.fact_id: text may not contain an unpaired"),
        ("member-erased", "v1.json", "erased_at", "0001-01-01T00:00:00+01:00", "data.erased_at: a time must have"),
        ("consent-given", "v1-staff.json", "sequence", 2**63, "data.sequence: Input should be less than or equal"),
        ("member-registered", "v1.json", "member_id", "m-1", "data.member_id: String should match pattern"),
    ],
)
def test_values_no_consumer_can_store_are_refused_by_the_contract(
    topic: str, example: str, field: str, value: object, reason: str
) -> None:
    doc = _recorded(topic, example)
    doc["data"][field] = value
    refused = _refusal(topic, doc)
    assert (refused.kind, reason in refused.reason) == ("invalid", True), refused.reason
    assert "Nord" not in refused.reason


def test_nul_in_a_nested_field_and_an_envelope_time_out_of_range_are_refused() -> None:
    doc = _recorded("member-registered", "v1.json")
    doc["data"]["programmes"][0]["programme_code"] = "BSL\x00"
    assert "data.programmes.0.programme_code" in _refusal("member-registered", doc).reason
    doc = _recorded("member-erased", "v1.json")
    doc["time"] = "9999-12-31T23:59:59-23:59"
    assert _refusal("member-erased", doc).reason.startswith("time: a time must have a UTC equivalent")
    doc["time"] = "9999-12-31T23:00:00+01:00"  # the same year, inside what UTC holds
    assert parse_envelope(json.dumps(doc).encode(), TOPIC_CONTRACTS["member-erased"]).time.year == 9999


def test_surrogate_pairs_and_ordinary_text_still_pass() -> None:
    doc = _recorded("consent-given", "v1-staff.json")
    doc["data"]["method"] = "\U0001f393 Ødegård"  # json.dumps writes the emoji as a surrogate pair escape
    event = parse_envelope(json.dumps(doc).encode(), TOPIC_CONTRACTS["consent-given"])
    assert event.data.method == "\U0001f393 Ødegård"


def test_a_type_that_is_no_string_is_an_unknown_type() -> None:
    doc = _recorded("campaigns", "v1-minimal.json")
    doc["type"] = [[["no.usn.alumni.campaign-requested.v1"]]]
    refused = _refusal("campaigns", doc)
    assert (refused.kind, refused.reason.startswith("type of JSON type list")) == ("unknown-type", True)


def test_binary_mode_data_with_a_lone_surrogate_or_deep_nesting_is_a_contract_error() -> None:
    from usn_schemas.envelope import structured_from_binary

    headers = [("ce_specversion", b"1.0"), ("ce_type", b"no.usn.alumni.member-erased.v1"), ("ce_id", b"1")]
    structured = structured_from_binary(headers, b'{"member_id": "\\ud800"}')
    assert b"\\ud800" in structured  # escaped: it has no UTF-8 form
    # Around the recursion limit, where reading the data succeeds and writing the document may
    # not (the depth depends on the stack the caller already uses): a contract error or fine.
    outcomes = set()
    for depth in range(950, 1050, 3):
        try:
            structured_from_binary(headers, b"[" * depth + b"]" * depth)
            outcomes.add("read")
        except ContractError as exc:
            outcomes.add(exc.kind)
    assert outcomes == {"read", "not-json"}
