"""Check-in codes and revocation lists: what verifies, what is refused, and the offline
verifier's command on lists it stored (no database, no network)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from events.checkin import verify as command
from events.checkin.codes import (
    InvalidCodeError,
    b64,
    development_keyring,
    issue,
    new_key_spec,
    parse_keys,
    public_keys_from_jwks,
    ticket,
    unb64,
    verify,
)
from events.checkin.verifier import InvalidListError, check_offline, open_list, sign_list

KEYRING = parse_keys(f"{new_key_spec('k2')},{new_key_spec('k1')}")
EVENT, OTHER_EVENT, REG = (str(uuid.uuid4()) for _ in range(3))


def test_a_code_carries_event_and_registration_only_and_is_small_enough_for_a_qr() -> None:
    code = issue(KEYRING, EVENT, REG)
    claims = verify(code, KEYRING.public_keys())
    assert (claims.event_id, claims.registration_id, claims.kid) == (EVENT, REG, "k2")
    assert len(code) < 140
    assert all(c.isalnum() or c in "-_" for c in code)
    assert issue(KEYRING, EVENT, REG) == code  # deterministic: the mail and her page show the same code
    shown = ticket(KEYRING, EVENT, REG)
    assert shown.code == code
    assert shown.qr_svg.startswith("<svg")
    assert "<script" not in shown.qr_svg


def test_forged_altered_and_unknown_key_codes_are_refused() -> None:
    code = issue(KEYRING, EVENT, REG)
    raw = bytearray(unb64(code))
    raw[-40] ^= 1  # a bit of the signature
    tampered = bytearray(unb64(code))
    tampered[10] ^= 1  # a bit of the event id
    other_key = issue(parse_keys(new_key_spec("k2")), EVENT, REG)  # same key id, another key
    for bad, why in [
        (b64(bytes(raw)), "bad signature"),
        (b64(bytes(tampered)), "bad signature"),
        (other_key, "bad signature"),
        (issue(development_keyring(), EVENT, REG), "unknown key"),
        (code[:-3], "damaged"),
        (code + "!", "not a check-in code"),
        ("", "not a check-in code"),
        ("x" * 5000, "not a check-in code"),
    ]:
        with pytest.raises(InvalidCodeError, match=why):
            verify(bad, KEYRING.public_keys())


def test_a_retired_key_still_verifies_and_the_jwks_round_trips() -> None:
    old = parse_keys(new_key_spec("old"))
    rotated = parse_keys(f"{new_key_spec('new')},old:{b64(old.keys['old'].private_bytes_raw())}")
    published = public_keys_from_jwks(json.loads(json.dumps(rotated.jwks())))
    assert set(published) == {"new", "old"}
    assert verify(issue(old, EVENT, REG), published).kid == "old"
    assert verify(issue(rotated, EVENT, REG), published).kid == "new"


@pytest.mark.parametrize("spec", ["", "k1", "k1:short", ":" + b64(bytes(32)), "k" * 17 + ":" + b64(bytes(32))])
def test_bad_key_settings_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="check-in key"):
        parse_keys(spec)


def test_offline_check_with_a_signed_revocation_list() -> None:
    cancelled = str(uuid.uuid4())
    document = sign_list(KEYRING, EVENT, 7, datetime.now(UTC), "published", [cancelled])
    revocations = open_list(document, KEYRING.public_keys())
    assert revocations.version == 7
    assert revocations.revoked == {cancelled}
    keys = KEYRING.public_keys()
    assert check_offline(issue(KEYRING, EVENT, REG), EVENT, keys, revocations).valid
    refused = check_offline(issue(KEYRING, EVENT, cancelled), EVENT, keys, revocations)
    assert (refused.valid, refused.reason) == (False, "the registration was cancelled (revoked)")
    assert check_offline(issue(KEYRING, OTHER_EVENT, REG), EVENT, keys, revocations).reason == (
        "the code is for another event"
    )
    assert (
        "bad signature"
        in check_offline(issue(parse_keys(new_key_spec("k2")), EVENT, REG), EVENT, keys, revocations).reason
    )
    gone = open_list(sign_list(KEYRING, EVENT, 8, datetime.now(UTC), "cancelled", []), keys)
    assert check_offline(issue(KEYRING, EVENT, REG), EVENT, keys, gone).reason == "the event is cancelled"
    with pytest.raises(InvalidListError):
        check_offline(issue(KEYRING, EVENT, REG), OTHER_EVENT, keys, revocations)


def test_a_forged_or_altered_revocation_list_is_refused() -> None:
    document = sign_list(KEYRING, EVENT, 3, datetime.now(UTC), "published", [str(uuid.uuid4())])
    emptied = json.loads(unb64(document["payload"]))
    emptied["revoked"] = []
    altered = {**document, "payload": b64(json.dumps(emptied).encode())}
    forged = sign_list(development_keyring(), EVENT, 3, datetime.now(UTC), "published", [])
    for bad in (altered, forged, {**forged, "kid": "k2"}, {"kid": "k2"}):
        with pytest.raises(InvalidListError):
            open_list(bad, KEYRING.public_keys())


def test_the_check_command_on_a_stored_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cancelled = str(uuid.uuid4())
    (tmp_path / command.KEYS_FILE).write_text(json.dumps(KEYRING.jwks()))
    issued = datetime.now(UTC) - timedelta(hours=1)
    signed = sign_list(KEYRING, EVENT, 4, issued, "published", [cancelled])
    command.list_file(tmp_path, EVENT).write_text(json.dumps(signed))
    good, revoked = issue(KEYRING, EVENT, REG), issue(KEYRING, EVENT, cancelled)
    assert command.main(["check", "--event", EVENT, "--dir", str(tmp_path), good]) == 0
    assert command.main(["check", "--event", EVENT, "--dir", str(tmp_path), good, revoked]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"valid {REG}", f"valid {REG}", "refused: the registration was cancelled (revoked)"]
    assert "old; cancellations since are not known" in err
    assert command.main(["check", "--event", OTHER_EVENT, "--dir", str(tmp_path), good]) == 2
