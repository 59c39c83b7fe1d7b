"""Consent's pure rules: what saving the preference centre records, which choices
exist, notice texts and their fingerprints, and unsubscribe tokens."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from alumni_kit.auth import (
    ExpiredTokenError,
    InvalidTokenError,
    TokenSigner,
    issue_unsubscribe_token,
    parse_keys,
    verify_unsubscribe_token,
)
from consent.notices import NoticeBook
from consent.preferences import Choice, Plan, UnknownChoiceError, parse_choices, plan_save
from consent.settings import DEFAULT_PURPOSES

BOOK = NoticeBook(DEFAULT_PURPOSES, "2026-11")
SIGNER = TokenSigner(parse_keys("k1:a-unit-test-key-long-enough"))


def plan(current: dict[tuple[str, str], str], wanted: set[Choice], verified: bool, has_email: bool = True) -> Plan:
    return plan_save("m1", current, wanted, has_email=has_email, email_verified=verified, notices=BOOK, language="nb")


def test_unticking_withdraws_and_ticking_sms_gives_at_once() -> None:
    result = plan({("email", "newsletter"): "given"}, {("sms", "events")}, verified=True)
    assert [(r.channel, r.purpose, r.state) for r in result.record] == [
        ("email", "newsletter", "withdrawn"),
        ("sms", "events", "given"),
    ]
    assert result.needs_confirmation == []
    assert all(r.notice == BOOK.get(r.purpose, "nb").ref for r in result.record)


def test_first_email_consent_waits_for_double_opt_in() -> None:
    result = plan({}, {("email", "newsletter"), ("email", "evu")}, verified=False)
    assert result.record == []
    assert result.needs_confirmation == ["newsletter", "evu"]
    verified = plan({}, {("email", "newsletter")}, verified=True)
    assert [(r.state, r.method) for r in verified.record] == [("given", "preference-centre-verified-address")]


def test_a_withdraw_only_page_cannot_give() -> None:
    result = plan_save(
        "m1",
        {("email", "events"): "given"},
        {("sms", "events"), ("email", "newsletter")},
        has_email=True,
        email_verified=True,
        notices=BOOK,
        language="nb",
        may_give=False,
    )
    assert [(r.channel, r.purpose, r.state) for r in result.record] == [("email", "events", "withdrawn")]
    assert result.needs_confirmation == []


def test_nothing_changed_records_nothing_and_never_given_is_not_withdrawn() -> None:
    assert plan({("email", "events"): "given"}, {("email", "events")}, verified=True).record == []
    assert plan({}, set(), verified=True).record == []
    assert plan({("sms", "career"): "withdrawn"}, set(), verified=True).record == []


def test_without_an_address_email_cannot_be_chosen() -> None:
    result = plan({}, {("email", "newsletter")}, verified=False, has_email=False)
    assert (result.record, result.needs_confirmation) == ([], [])


@pytest.mark.parametrize("name", ["fax:newsletter", "email:lottery", "email", "", "email:newsletter:x"])
def test_unknown_choices_are_refused_with_the_allowed_ones(name: str) -> None:
    with pytest.raises(UnknownChoiceError) as caught:
        parse_choices([(name, "on")], DEFAULT_PURPOSES)
    assert "email:newsletter" in caught.value.allowed
    assert "sms:career" in str(caught.value)


def test_only_ticked_boxes_count() -> None:
    fields = [("email:newsletter", "on"), ("sms:events", "off"), ("email:evu", "")]
    assert parse_choices(fields, DEFAULT_PURPOSES) == {("email", "newsletter")}


def test_notices_fingerprint_the_exact_text_in_each_language() -> None:
    nb, en = BOOK.get("newsletter", "nb"), BOOK.get("newsletter", "en")
    assert nb.sha256 == hashlib.sha256(nb.text.encode()).hexdigest()
    assert nb.sha256 != en.sha256
    assert {n.purpose for n in BOOK.all()} == set(DEFAULT_PURPOSES)


def test_a_purpose_without_notice_text_stops_the_service(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="alumni-survey/nb, alumni-survey/en"):
        NoticeBook((*DEFAULT_PURPOSES, "alumni-survey"), "v")
    texts = tmp_path / "notices.json"
    texts.write_text(
        json.dumps({"alumni-survey": {lang: {"title": "Survey", "text": f"Survey ({lang})"} for lang in ("nb", "en")}})
    )
    book = NoticeBook((*DEFAULT_PURPOSES, "alumni-survey"), "v", texts)
    assert book.get("alumni-survey", "en").text == "Survey (en)"


def test_unsubscribe_tokens_carry_member_and_purpose_and_expire() -> None:
    token = issue_unsubscribe_token(SIGNER, "m1", "newsletter", 60)
    assert verify_unsubscribe_token(SIGNER, token) == ("m1", "newsletter")
    with pytest.raises(ExpiredTokenError):
        verify_unsubscribe_token(SIGNER, issue_unsubscribe_token(SIGNER, "m1", "newsletter", -1))
    rotated = TokenSigner(parse_keys("k2:a-newer-unit-test-key-long,k1:a-unit-test-key-long-enough"))
    assert verify_unsubscribe_token(rotated, token) == ("m1", "newsletter")  # old links survive a key rotation
    with pytest.raises(InvalidTokenError, match="unknown signing key"):
        verify_unsubscribe_token(TokenSigner(parse_keys("k2:a-newer-unit-test-key-long")), token)
    with pytest.raises(InvalidTokenError, match="bad signature"):
        verify_unsubscribe_token(SIGNER, token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1])
