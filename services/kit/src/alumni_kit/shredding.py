"""Crypto-shredding: personal data in events is sealed with the subject's own key.

Membership holds one AES-256-GCM key per subject (a member, or a sign-up that
is not a member yet). Before an event leaves a service, every field of its
`data` marked `PersonalData` is replaced by a sealed token

    pd1.<subject id>.<key version>.<base64url(nonce | ciphertext)>

whose associated data binds it to that subject, key version and field name, so
a token cannot be moved to another member or field. Erasure deletes the keys:
every copy of every message about her (on any topic, in any replay, in any
backup of the broker) then holds ciphertext nobody can open.

Consumers open the tokens before the contract is validated, so handlers only
ever see plain models. A message whose key is gone belongs to an erased
subject and is skipped, never dead-lettered (nothing is wrong with it).
Sealing is at the wire: models, the database and the API stay plain.
"""

from __future__ import annotations

import base64
import functools
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel
from pydantic_core import from_json, to_json

from usn_schemas.envelope import CloudEvent, personal_fields

PREFIX = "pd1."
# A cheap pre-check on raw bytes: most messages (consent facts, sends) hold no token.
MARKER = b'"pd1.'
KEY_BYTES = 32
_NONCE_BYTES = 12

KeyId = tuple[str, int]  # (subject id, key version)


@dataclass(frozen=True)
class SubjectKey:
    subject_id: str
    version: int
    secret: bytes

    @property
    def id(self) -> KeyId:
        return (self.subject_id, self.version)


class SealedFieldError(ValueError):
    """A token that is malformed or fails authentication: bad input, not erasure."""


class KeyRing(Protocol):
    """Where a service gets keys: membership's own table, or membership over HTTP elsewhere."""

    async def lookup(self, wanted: set[KeyId]) -> dict[KeyId, bytes]:
        """The secrets of `wanted` that still exist; a missing one was erased."""
        ...

    async def current(self, subject_ids: set[str]) -> dict[str, SubjectKey]:
        """The key to seal new messages about each subject; an erased subject is absent."""
        ...


def new_key(subject_id: str, version: int = 1) -> SubjectKey:
    return SubjectKey(subject_id, version, AESGCM.generate_key(bit_length=KEY_BYTES * 8))


def _aad(subject_id: str, version: int, field: str) -> bytes:
    return f"{subject_id}.{version}.{field}".encode()


def seal_value(key: SubjectKey, field: str, value: Any, cipher: AESGCM | None = None) -> str:
    """`value` as a token; pass `cipher` (AESGCM of the key) when sealing several fields."""
    nonce = os.urandom(_NONCE_BYTES)
    plain = to_json(value)
    sealed = (cipher or AESGCM(key.secret)).encrypt(nonce, plain, _aad(key.subject_id, key.version, field))
    body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()
    return f"{PREFIX}{key.subject_id}.{key.version}.{body}"


def parse_token(token: str) -> tuple[KeyId, bytes]:
    try:
        _, subject_id, version, body = token.split(".", 3)
        return (subject_id, int(version)), base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        raise SealedFieldError("malformed sealed field") from None


def open_value(token: str, field: str, secrets: dict[KeyId, bytes]) -> Any:
    """The plain value of `token`; KeyError when its key is gone (erased)."""
    key_id, blob = parse_token(token)
    secret = secrets[key_id]
    try:
        plain = AESGCM(secret).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _aad(*key_id, field))
    except InvalidTag:
        raise SealedFieldError(f"sealed field {field!r} fails authentication") from None
    return from_json(plain)


def personal_data_fields(event: CloudEvent) -> frozenset[str]:
    """The `data` fields to seal. Contracts keep personal data at the top level of
    `data` (a unit test checks every registered contract), so one level suffices."""
    return _personal_fields_of(type(event.data)) if isinstance(event.data, BaseModel) else frozenset()


@functools.cache
def _personal_fields_of(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(personal_fields(model))


def seal_event(event: CloudEvent, key: SubjectKey) -> bytes:
    """The event's JSON with each personal field of `data` sealed (None stays None)."""
    doc = event.model_dump(mode="json", exclude_none=True)
    data = doc.get("data")
    if isinstance(data, dict):
        cipher = AESGCM(key.secret)
        for name in personal_data_fields(event) & data.keys():
            data[name] = seal_value(key, name, data[name], cipher)
    return to_json(doc)


def tokens_in(raw: bytes) -> list[tuple[str, str]] | None:
    """(field, token) pairs in the top level of `data`, or None when `raw` holds none."""
    if MARKER not in raw:
        return None
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None  # not JSON: the contract check will say so
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        return None
    found = [(k, v) for k, v in data.items() if isinstance(v, str) and v.startswith(PREFIX)]
    return found or None


def key_ids(tokens: Iterable[tuple[str, str]]) -> set[KeyId]:
    ids = set()
    for _, token in tokens:
        with_key, _ = parse_token(token)
        ids.add(with_key)
    return ids


def open_event(raw: bytes, secrets: dict[KeyId, bytes]) -> bytes | None:
    """`raw` with its sealed fields opened; None when a key is gone (an erased subject)."""
    doc = json.loads(raw)
    data = doc["data"]
    for name, value in list(data.items()):
        if isinstance(value, str) and value.startswith(PREFIX):
            try:
                data[name] = open_value(value, name, secrets)
            except KeyError:
                return None
    return to_json(doc)


ERASED = None  # what `open_batch` gives for a message whose subject's key is gone


async def open_batch(values: list[bytes | None], keyring: KeyRing | None) -> list[bytes | SealedFieldError | None]:
    """Each value with its sealed fields opened (one key lookup for the whole batch).

    Unsealed values come back as they are; ERASED (None) marks a message of an
    erased subject, and a SealedFieldError one whose tokens are broken. A value
    that was None to begin with stays None only if it held no tokens, which the
    caller tells apart by looking at the original.
    """
    found = [tokens_in(v) if v is not None else None for v in values]
    if not any(found):
        return list(values)
    out: list[bytes | SealedFieldError | None] = list(values)
    wanted: set[KeyId] = set()
    for i, tokens in enumerate(found):
        if tokens:
            try:
                wanted |= key_ids(tokens)
            except SealedFieldError as exc:
                out[i], found[i] = exc, None
    if keyring is None:
        raise RuntimeError("sealed personal data arrived but this service has no key ring")
    secrets = await keyring.lookup(wanted)
    for i, tokens in enumerate(found):
        raw = values[i]
        if tokens and raw is not None:
            try:
                out[i] = open_event(raw, secrets)
            except SealedFieldError as exc:
                out[i] = exc
    return out
