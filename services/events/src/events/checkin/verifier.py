"""Offline verification: a code checked with the public keys and the event's signed
revocation list only, no database (a door with bad network).

The revocation list (`GET /events/{id}/checkin/revocations`) is a signed document

    {"kid": …, "payload": base64url(JSON), "signature": base64url(Ed25519 over LIST_LABEL + payload bytes)}

whose payload is `{"event_id", "version", "issued_at", "event_status", "revoked": [registration ids]}`.
The signature is over the payload's bytes as sent, so no JSON canonicalisation is needed
to check it in any language (the check-in page's offline mode does it with WebCrypto).
`version` is the event's fact sequence when the list was made: it only grows, so a door
keeps the highest version it has seen and never goes back to an older list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from events.checkin.codes import LIST_LABEL, InvalidCodeError, Keyring, b64, unb64, verify


class InvalidListError(Exception):
    """A revocation list that is damaged, forged, or not this event's."""


@dataclass(frozen=True)
class RevocationList:
    event_id: str
    version: int
    issued_at: datetime
    event_status: str
    revoked: frozenset[str]


def sign_list(
    keyring: Keyring, event_id: str, version: int, issued_at: datetime, event_status: str, revoked: Sequence[str]
) -> dict[str, str]:
    payload = {
        "event_id": event_id,
        "version": version,
        "issued_at": issued_at.isoformat(),
        "event_status": event_status,
        "revoked": sorted(revoked),
    }
    data = json.dumps(payload, separators=(",", ":")).encode()
    kid, signature = keyring.sign(LIST_LABEL, data)
    return {"kid": kid, "payload": b64(data), "signature": b64(signature)}


def open_list(document: Mapping[str, Any], public_keys: Mapping[str, Ed25519PublicKey]) -> RevocationList:
    """The list a door synced, once its signature holds."""
    try:
        key = public_keys.get(str(document["kid"]))
        data, signature = unb64(str(document["payload"])), unb64(str(document["signature"]))
    except (KeyError, ValueError):
        raise InvalidListError("not a revocation list") from None
    if key is None:
        raise InvalidListError("revocation list signed with an unknown key")
    try:
        key.verify(signature, LIST_LABEL + data)
    except InvalidSignature:
        raise InvalidListError("forged or altered revocation list (bad signature)") from None
    payload = json.loads(data)
    return RevocationList(
        event_id=str(payload["event_id"]),
        version=int(payload["version"]),
        issued_at=datetime.fromisoformat(payload["issued_at"]),
        event_status=str(payload["event_status"]),
        revoked=frozenset(str(r) for r in payload["revoked"]),
    )


@dataclass(frozen=True)
class Verdict:
    valid: bool
    reason: str  # why not (or "valid"); never personal data: a code carries none
    registration_id: str | None = None


def check_offline(
    code: str, event_id: str, public_keys: Mapping[str, Ed25519PublicKey], revocations: RevocationList
) -> Verdict:
    """Would the door let her in? Genuine, for this event, not revoked, the event not cancelled.
    What it cannot know: a cancellation after the list was issued, and check-ins at other doors."""
    if revocations.event_id != event_id:
        raise InvalidListError("the revocation list is for another event")
    try:
        claims = verify(code, public_keys)
    except InvalidCodeError as exc:
        return Verdict(False, str(exc))
    if claims.event_id != event_id:
        return Verdict(False, "the code is for another event", claims.registration_id)
    if revocations.event_status == "cancelled":
        return Verdict(False, "the event is cancelled", claims.registration_id)
    if claims.registration_id in revocations.revoked:
        return Verdict(False, "the registration was cancelled (revoked)", claims.registration_id)
    return Verdict(True, "valid", claims.registration_id)
