"""The `alumni` command's pure parts: help, times, types, group names, sealed-only faults."""

from __future__ import annotations

import json

import pytest
from aiokafka.structs import ConsumerRecord

from alumni_kit.shredding import new_key, seal_event
from tests.events import member_registered
from usn_schemas.member import MemberRegisteredV1
from usn_schemas.registry import TOPIC_CONTRACTS
from usn_tools.alumni.checking import check, read
from usn_tools.alumni.cli import main
from usn_tools.alumni.lag import platform_topic_of, selected
from usn_tools.alumni.replay import parse_time, type_matches


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["replay"],
        ["audit"],
        ["audit", "member"],
        ["dlq"],
        ["dlq", "list"],
        ["dlq", "show"],
        ["dlq", "redrive"],
        ["lag"],
    ],
)
def test_every_subcommand_has_complete_help(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*args, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: alumni")
    assert "Exit codes" in text


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["replay", "graduated", "--since", "yesterday"])
    assert exited.value.code == 2
    assert "not a time" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["dlq", "redrive", "graduated"])  # --offsets or --all
    assert exited.value.code == 2


def test_times_are_utc_unless_they_say_otherwise() -> None:
    assert parse_time("2026-12-02T10:00:00Z") == parse_time("2026-12-02T11:00:00+01:00") == 1796205600000
    assert parse_time("2026-12-02T10:00:00") == 1796205600000
    assert parse_time("2026-12-02") == 1796169600000
    assert parse_time("1796205600123") == 1796205600123


def test_a_type_matches_by_name_with_or_without_version() -> None:
    for wanted in ("graduated", "graduated.v1", "no.usn.fs.graduated.v1"):
        assert type_matches("no.usn.fs.graduated.v1", wanted)
    assert not type_matches("no.usn.alumni.member-registered.v1", "graduated")


def test_platform_groups_are_named_service_dot_topic() -> None:
    assert platform_topic_of("consent.member-registered") == ("consent", "member-registered")
    assert platform_topic_of("mailer-x1.transactional-mail-requested") == ("mailer-x1", "transactional-mail-requested")
    assert platform_topic_of("some-other-app") is None
    assert selected("consent.member-registered", "consent")
    assert selected("consent.member-registered", "consent.member-registered")
    assert not selected("consent.member-registered", "mailer")


def _record(value: bytes) -> ConsumerRecord:
    return ConsumerRecord("member-registered", 0, 0, 0, 0, b"k", value, None, len(b"k"), len(value), [])


def test_sealed_fields_alone_do_not_fail_a_message_but_other_faults_do() -> None:
    contracts = TOPIC_CONTRACTS["member-registered"]
    event = MemberRegisteredV1.model_validate(member_registered())
    sealed = seal_event(event, new_key(event.data.member_id))
    ok = check(read(_record(sealed)), contracts)
    assert ok.valid, ok.error
    assert ok.sealed == ["email", "family_name", "given_name", "programmes", "student_number"]
    doc = json.loads(sealed)
    doc["data"]["faculties"] = ["NOPE"]
    bad = check(read(_record(json.dumps(doc).encode())), contracts)
    assert bad.error is not None
    assert bad.error.kind == "invalid"
    assert "faculties" in bad.error.reason
    assert "pd1." not in bad.error.reason
