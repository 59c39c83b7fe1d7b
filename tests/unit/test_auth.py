"""Signed tokens: staff bearer tokens and member links."""

from __future__ import annotations

import base64

import pytest

from alumni_kit.auth import (
    InvalidTokenError,
    TokenSigner,
    issue_member_link,
    issue_staff_token,
    parse_keys,
    verify_member_link,
    verify_staff_token,
)

KEYS = parse_keys("k2:second-key-for-signing-now,k1:first-key-still-verifies")
SIGNER = TokenSigner(KEYS)


def test_staff_token_round_trip_and_faculty_scope() -> None:
    who = verify_staff_token(SIGNER, issue_staff_token(SIGNER, "kari", "ak", "HH", 60))
    assert (who.subject, who.role, who.faculty) == ("kari", "ak", "HH")
    assert who.may_see("HH")
    assert not who.may_see("TNM")
    comms = verify_staff_token(SIGNER, issue_staff_token(SIGNER, "per", "comms", None, 60))
    assert all(comms.may_see(f) for f in ("HH", "TNM", "HS", "HIU"))


def test_scoped_roles_need_a_faculty() -> None:
    with pytest.raises(ValueError, match="faculty"):
        issue_staff_token(SIGNER, "kari", "at", None, 60)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), "bad signature"),
        (lambda t: "x" + t, "malformed"),
        (lambda t: t.replace(".", ""), "malformed"),
    ],
)
def test_altered_tokens_are_refused(mutate: object, reason: str) -> None:
    token = issue_staff_token(SIGNER, "kari", "comms", None, 60)
    with pytest.raises(InvalidTokenError, match=reason):
        verify_staff_token(SIGNER, mutate(token))  # type: ignore[operator]


def test_expired_and_wrong_kind_are_refused() -> None:
    with pytest.raises(InvalidTokenError, match="expired"):
        verify_staff_token(SIGNER, issue_staff_token(SIGNER, "kari", "comms", None, -1))
    link = issue_member_link(SIGNER, "m1", "login", 60, "n1")
    with pytest.raises(InvalidTokenError, match="staff"):
        verify_staff_token(SIGNER, link)
    with pytest.raises(InvalidTokenError, match="preferences"):
        verify_member_link(SIGNER, link, "preferences")
    assert verify_member_link(SIGNER, link, "login")["sub"] == "m1"


def test_rotation_old_key_verifies_unknown_key_does_not() -> None:
    old = TokenSigner(parse_keys("k1:first-key-still-verifies"))
    assert verify_staff_token(SIGNER, issue_staff_token(old, "a", "aab", None, 60)).role == "aab"
    stranger = TokenSigner(parse_keys("k9:some-other-key-entirely"))
    with pytest.raises(InvalidTokenError, match="unknown signing key"):
        verify_staff_token(SIGNER, issue_staff_token(stranger, "a", "aab", None, 60))


def test_weak_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="16"):
        parse_keys("k:short")


@pytest.mark.parametrize(
    "payload",
    [b'{"kid": [], "kind": "staff"}', b'{"kid": {"a": 1}}', b"[1, 2]", b'"text"', b"\xff\xfe"],
)
def test_crafted_payloads_are_refused_not_crashed_on(payload: bytes) -> None:
    token = base64.urlsafe_b64encode(payload).rstrip(b"=").decode() + ".c2ln"
    with pytest.raises(InvalidTokenError):
        SIGNER.verify(token, "staff")


def test_a_non_ascii_signature_is_refused_not_crashed_on() -> None:
    body = issue_staff_token(SIGNER, "kari", "comms", None, 60).partition(".")[0]
    with pytest.raises(InvalidTokenError, match="bad signature"):
        SIGNER.verify(f"{body}.sïgnatür", "staff")
