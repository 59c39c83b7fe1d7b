"""Signed, expiring tokens: staff bearer tokens and e-mailed member links.

Format: `base64url(json payload).base64url(HMAC-SHA256)`; the payload names the
key id (`kid`), so keys rotate by adding a new first key and keeping the old
ones for verification until their tokens expired. Compared in constant time.

Production identity will come from the university's OIDC provider: anything
that turns a bearer token into a `StaffPrincipal` can replace `TokenSigner`
behind `staff_principal` without touching the routes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any, Literal

from usn_schemas.vocabulary import FACULTIES as FACULTIES  # re-exported for the CLI and services

Role = Literal["comms", "ak", "at", "aab"]
ROLES: tuple[Role, ...] = ("comms", "ak", "at", "aab")
# Faculty-scoped roles: an Alumnikontakt or Alumniteam member sees only her faculty.
SCOPED_ROLES = ("ak", "at")


class InvalidTokenError(Exception):
    """Forged, altered, expired or of the wrong kind; `str()` says which, safely."""


class ExpiredTokenError(InvalidTokenError):
    """Genuine but past its expiry: the caller may offer a fresh link."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_keys(spec: str) -> dict[str, bytes]:
    """'kid:secret,kid2:secret2' → ordered {kid: secret}; the first key signs."""
    keys: dict[str, bytes] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kid, sep, secret = part.partition(":")
        if not sep or not kid or len(secret) < 16:
            raise ValueError("signing keys are 'kid:secret' pairs, secrets of at least 16 characters")
        keys[kid] = secret.encode()
    if not keys:
        raise ValueError("at least one signing key is required")
    return keys


class TokenSigner:
    def __init__(self, keys: dict[str, bytes]) -> None:
        self._keys = keys
        self._signing_kid = next(iter(keys))

    def sign(self, kind: str, claims: dict[str, Any], ttl_seconds: int) -> str:
        payload = {**claims, "kind": kind, "kid": self._signing_kid, "exp": int(time.time()) + ttl_seconds}
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{self._mac(self._signing_kid, body)}"

    def verify(self, token: str, kind: str) -> dict[str, Any]:
        body, sep, mac = token.partition(".")
        if not sep:
            raise InvalidTokenError("malformed token")
        try:
            payload = json.loads(_unb64(body))
        except ValueError:
            raise InvalidTokenError("malformed token") from None
        if not isinstance(payload, dict):
            raise InvalidTokenError("malformed token")
        kid = payload.get("kid")
        if not isinstance(kid, str) or kid not in self._keys:
            raise InvalidTokenError("unknown signing key")
        # Bytes, not str: compare_digest refuses non-ASCII text, and a crafted token must get a 4xx, not a 500.
        if not hmac.compare_digest(mac.encode("utf-8", "replace"), self._mac(kid, body).encode()):
            raise InvalidTokenError("bad signature")
        if payload.get("kind") != kind:
            raise InvalidTokenError(f"not a {kind} token")
        if not isinstance(payload.get("exp"), int) or payload["exp"] < time.time():
            raise ExpiredTokenError("expired")
        return payload

    def derived_keys(self, label: str) -> list[bytes]:
        """Keys for another use of the same secrets (e.g. VERP tags), the signing one first;
        verifiers try them all, so a rotation does not orphan what the old key signed."""
        return [hmac.new(secret, label.encode(), hashlib.sha256).digest() for secret in self._keys.values()]

    def _mac(self, kid: str, body: str) -> str:
        return _b64(hmac.new(self._keys[kid], body.encode(), hashlib.sha256).digest())


@dataclass(frozen=True)
class StaffPrincipal:
    subject: str
    role: Role
    faculty: str | None  # required for ak/at; None means all faculties

    def may_see(self, faculty: str) -> bool:
        return self.role not in SCOPED_ROLES or self.faculty == faculty

    @property
    def unscoped(self) -> bool:
        """Sees every faculty's members, also those who belong to no faculty yet."""
        return self.role not in SCOPED_ROLES and self.sees_people

    @property
    def sees_people(self) -> bool:
        """The advisory board (AAB) reads analytics, never individual members."""
        return self.role != "aab"

    def visible_faculties(self) -> tuple[str, ...]:
        return FACULTIES if self.role not in SCOPED_ROLES else (self.faculty or "",)


def issue_staff_token(signer: TokenSigner, subject: str, role: Role, faculty: str | None, ttl_seconds: int) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role in SCOPED_ROLES and faculty not in FACULTIES:
        raise ValueError(f"role {role} needs a faculty: one of {', '.join(FACULTIES)}")
    return signer.sign("staff", {"sub": subject, "role": role, "faculty": faculty}, ttl_seconds)


def verify_staff_token(signer: TokenSigner, token: str) -> StaffPrincipal:
    claims = signer.verify(token, "staff")
    role, faculty = claims.get("role"), claims.get("faculty")
    if role not in ROLES or (role in SCOPED_ROLES and faculty not in FACULTIES):
        raise InvalidTokenError("bad role or faculty")
    return StaffPrincipal(subject=str(claims.get("sub", "")), role=role, faculty=faculty)


def issue_member_link(signer: TokenSigner, member_id: str, purpose: str, ttl_seconds: int, nonce: str) -> str:
    """A token for an e-mailed link; `nonce` lets the receiving service make it single-use."""
    return signer.sign("member-link", {"sub": member_id, "purpose": purpose, "nonce": nonce}, ttl_seconds)


def verify_member_link(signer: TokenSigner, token: str, purpose: str) -> dict[str, Any]:
    claims = signer.verify(token, "member-link")
    if claims.get("purpose") != purpose:
        raise InvalidTokenError(f"not a {purpose} link")
    return claims


def issue_unsubscribe_token(signer: TokenSigner, member_id: str, purpose: str, ttl_seconds: int) -> str:
    """The token in an RFC 8058 `List-Unsubscribe` URL: withdraws e-mail for one purpose.

    Member and purpose are signed, so neither can be altered; no nonce, because
    the link must keep working (idempotently) for as long as the mail is kept.
    """
    return signer.sign("unsubscribe", {"sub": member_id, "purpose": purpose}, ttl_seconds)


def verify_unsubscribe_token(signer: TokenSigner, token: str) -> tuple[str, str]:
    """(member id, purpose) of a genuine, unexpired unsubscribe token."""
    claims = signer.verify(token, "unsubscribe")
    member_id, purpose = claims.get("sub"), claims.get("purpose")
    if not isinstance(member_id, str) or not isinstance(purpose, str):
        raise InvalidTokenError("malformed token")
    return member_id, purpose


def issue_service_token(signer: TokenSigner, service: str, ttl_seconds: int = 300) -> str:
    """A bearer token one service shows another (e.g. to fetch keys or an access export)."""
    return signer.sign("service", {"sub": service}, ttl_seconds)


def verify_service_token(signer: TokenSigner, token: str) -> str:
    """The calling service's name from a genuine, unexpired service token."""
    service = signer.verify(token, "service").get("sub")
    if not isinstance(service, str) or not service:
        raise InvalidTokenError("malformed token")
    return service


def issue_operator_token(signer: TokenSigner, operator: str, ttl_seconds: int = 3600) -> str:
    """A bearer token for one operator (a person, named by a staff id, not a service):
    `alumni replay --open` shows it to membership's key API, which opens members' sealed
    fields only for the operators named in `MEMBERSHIP_KEY_OPERATORS` (docs/operations.md)."""
    if not operator:
        raise ValueError("an operator token needs a subject")
    return signer.sign("operator", {"sub": operator}, ttl_seconds)


def verify_operator_token(signer: TokenSigner, token: str) -> str:
    """The operator's id from a genuine, unexpired operator token."""
    operator = signer.verify(token, "operator").get("sub")
    if not isinstance(operator, str) or not operator:
        raise InvalidTokenError("malformed token")
    return operator
