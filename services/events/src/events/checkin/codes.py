"""Check-in codes: a registration's seat, signed with the events service's Ed25519 key.

A code is base64url (no padding) of

    version (1 byte, 1) | key id length (1 byte) | key id (ASCII) | event id (16) | registration id (16)
    | Ed25519 signature (64) of a domain label and everything before it

about 135 characters with a short key id: small enough for a QR code a phone camera reads
at arm's length, and no personal data at all (two random ids). Ed25519 signatures are
deterministic, so a registration's code is the same in the mail, on her page and at
every replica. Anyone with the public key can check a code without the database (a
door with bad network); only the service can make one.

Keys: `EVENTS_CHECKIN_KEYS` = "kid:seed,kid2:seed2", each seed the base64url of 32
random bytes (`python -m events.checkin.codes new-key` makes one). The first signs,
all verify and are published at `GET /checkin/keys` (a JWK set), so a key rotates by
putting a new one first and keeping the old one until its events are over. Unset, a
public development key signs, with a warning at startup, as the kit does for tokens.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import secrets
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import segno
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

log = logging.getLogger(__name__)

CODE_VERSION = 1
# Domain labels: a signature over a code can never pass for one over a revocation list, or back.
CODE_LABEL = b"usn-alumni/events/checkin-code/v1\x00"
LIST_LABEL = b"usn-alumni/events/revocation-list/v1\x00"
_SIGNATURE = 64
_MAX_KID = 16
_MAX_CODE_CHARS = 300  # far above a real code; anything longer is refused before decoding
# The public development key: anyone can make codes with it. Never for production.
DEV_KID = "dev"
_DEV_SEED = hashlib.sha256(b"usn-alumni events check-in: local development only").digest()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    """Strict base64url: any other character is an error (not silently skipped)."""
    if not text.isascii() or not all(c.isalnum() or c in "-_" for c in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class InvalidCodeError(Exception):
    """Damaged, forged, or signed by a key we do not know; `str()` says which (no personal data)."""


@dataclass(frozen=True)
class Keyring:
    """The service's check-in keys by id, the signing one first."""

    keys: Mapping[str, Ed25519PrivateKey]

    @property
    def signing_kid(self) -> str:
        return next(iter(self.keys))

    @property
    def is_development(self) -> bool:
        return DEV_KID in self.keys

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        return {kid: key.public_key() for kid, key in self.keys.items()}

    def sign(self, label: bytes, data: bytes) -> tuple[str, bytes]:
        kid = self.signing_kid
        return kid, self.keys[kid].sign(label + data)

    def jwks(self) -> dict[str, Any]:
        """The public keys as a JWK set (RFC 8037 OKP), as WebCrypto and JOSE libraries import them."""
        return {"keys": [jwk(kid, key) for kid, key in self.public_keys().items()]}


def jwk(kid: str, key: Ed25519PublicKey) -> dict[str, str]:
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid, "x": b64(raw)}


def public_keys_from_jwks(document: Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    """The verifier's side of `Keyring.jwks` (what a door device stored when it synced)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for entry in document.get("keys", []):
        if entry.get("kty") == "OKP" and entry.get("crv") == "Ed25519" and isinstance(entry.get("kid"), str):
            keys[entry["kid"]] = Ed25519PublicKey.from_public_bytes(unb64(str(entry["x"])))
    return keys


def parse_keys(spec: str) -> Keyring:
    """'kid:seed,kid2:seed2' (seeds base64url of 32 bytes) → a keyring; the first signs."""
    keys: dict[str, Ed25519PrivateKey] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kid, sep, seed = part.partition(":")
        if not sep or not 0 < len(kid) <= _MAX_KID or not kid.isascii() or not kid.isprintable():
            raise ValueError(f"check-in keys are 'kid:seed' pairs with a key id of 1 to {_MAX_KID} ASCII characters")
        try:
            raw = unb64(seed)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise ValueError("a check-in key's seed is the base64url of 32 random bytes")
        keys[kid] = Ed25519PrivateKey.from_private_bytes(raw)
    if not keys:
        raise ValueError("at least one check-in key is required")
    return Keyring(keys)


def development_keyring() -> Keyring:
    return Keyring({DEV_KID: Ed25519PrivateKey.from_private_bytes(_DEV_SEED)})


@functools.cache
def keyring_from(spec: str) -> Keyring:
    """The configured keys, or (unset) the public development key, said loudly (once).
    Cached: any part of the service (the app, the confirmation mail) may ask for it with
    `settings.checkin_keys.get_secret_value()` and gets the same keyring."""
    if spec.strip():
        return parse_keys(spec)
    log.warning(
        "EVENTS_CHECKIN_KEYS is not set: check-in codes are signed with the PUBLIC development key;"
        " anyone can forge them. Set it in any shared or production environment."
    )
    return development_keyring()


def new_key_spec(kid: str) -> str:
    """A fresh 'kid:seed' for EVENTS_CHECKIN_KEYS."""
    return f"{kid}:{b64(secrets.token_bytes(32))}"


@dataclass(frozen=True)
class CodeClaims:
    event_id: str
    registration_id: str
    kid: str


def issue(keyring: Keyring, event_id: str, registration_id: str) -> str:
    kid = keyring.signing_kid.encode()
    body = bytes([CODE_VERSION, len(kid)]) + kid + uuid.UUID(event_id).bytes + uuid.UUID(registration_id).bytes
    _, signature = keyring.sign(CODE_LABEL, body)
    return b64(body + signature)


def verify(code: str, public_keys: Mapping[str, Ed25519PublicKey]) -> CodeClaims:
    """The event and registration of a genuine code; `InvalidCodeError` for anything else.
    Needs only the public keys: the API and the offline verifier both use it."""
    text = code.strip()
    if not text or len(text) > _MAX_CODE_CHARS:
        raise InvalidCodeError("not a check-in code")
    try:
        raw = unb64(text)
    except ValueError:
        raise InvalidCodeError("not a check-in code") from None
    if len(raw) < 2 or raw[0] != CODE_VERSION:
        raise InvalidCodeError("not a check-in code (unknown version)")
    kid_end = 2 + raw[1]
    if len(raw) != kid_end + 32 + _SIGNATURE:
        raise InvalidCodeError("not a check-in code (damaged)")
    kid = raw[2:kid_end].decode("ascii", "replace")
    key = public_keys.get(kid)
    if key is None:
        raise InvalidCodeError("signed with an unknown key")
    body, signature = raw[:-_SIGNATURE], raw[-_SIGNATURE:]
    try:
        key.verify(signature, CODE_LABEL + body)
    except InvalidSignature:
        raise InvalidCodeError("forged or altered code (bad signature)") from None
    event_id = str(uuid.UUID(bytes=raw[kid_end : kid_end + 16]))
    registration_id = str(uuid.UUID(bytes=raw[kid_end + 16 : kid_end + 32]))
    return CodeClaims(event_id, registration_id, kid)


# The QR data mask, fixed. Choosing the best of the eight (segno's default) scores each in
# pure Python: a ticket's QR took 19 ms instead of 4 (2026-12-02), for every seat's
# confirmation mail, on the event loop that also answers a popular event's registrations
# (bench/README.md, `bench/run events`). Every reader takes the mask from the code's format information; the
# choice only avoids unlucky patterns, which the quiet zone and error correction M absorb.
QR_MASK = 0


def qr_svg(code: str) -> str:
    """The code as a QR code, an inline SVG (one path, no external resources: allowed by the
    pages' Content-Security-Policy and by mail clients). Error correction M: a phone still
    reads a creased print-out."""
    qr = segno.make(code, error="m", micro=False, mask=QR_MASK)
    return str(qr.svg_inline(scale=4, border=4, dark="#000", light="#fff", title="QR"))


@dataclass(frozen=True)
class Ticket:
    """What a seat holder shows at the door: the code as text and as a QR code (SVG)."""

    code: str
    qr_svg: str


def ticket(keyring: Keyring, event_id: str, registration_id: str) -> Ticket:
    """A registration's check-in code and its QR (SVG): for her page and her confirmation mail.
    Give it only for a seat (status `registered`); the code of a registration that ends is
    refused at the door (the revocation list)."""
    code = issue(keyring, event_id, registration_id)
    return Ticket(code, qr_svg(code))


def main(argv: list[str] | None = None) -> None:
    """`python -m events.checkin.codes new-key [KID]`: a fresh key for EVENTS_CHECKIN_KEYS."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "new-key":
        sys.exit("usage: python -m events.checkin.codes new-key [KID]")
    print(new_key_spec(args[1] if len(args) > 1 else secrets.token_hex(3)))


if __name__ == "__main__":
    main()
