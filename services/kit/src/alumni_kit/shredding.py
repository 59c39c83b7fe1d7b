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
import re
from collections.abc import Iterable, Mapping
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


# A token's parts are checked before anything looks a key up: a subject id that is
# no member id, or a version no key table can hold, is that message's fault.
_SUBJECT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_VERSION = re.compile(r"^[1-9][0-9]{0,9}$")
_BODY = re.compile(r"^[A-Za-z0-9_-]+$")
MAX_KEY_VERSION = 2**31 - 1  # the key tables' int
_MIN_BLOB = _NONCE_BYTES + 16  # nonce and GCM tag


def parse_token(token: str) -> tuple[KeyId, bytes]:
    """The key id and sealed bytes of `token`; SealedFieldError saying which part is wrong."""
    parts = token.split(".", 3)
    if len(parts) != 4 or parts[0] + "." != PREFIX:
        raise SealedFieldError("malformed sealed field")
    _, subject_id, version, body = parts
    if not _SUBJECT_ID.match(subject_id):
        raise SealedFieldError("sealed field names no valid subject id")
    if not _VERSION.match(version) or int(version) > MAX_KEY_VERSION:
        raise SealedFieldError("sealed field's key version is out of range")
    if not _BODY.match(body) or len(body) % 4 == 1:
        raise SealedFieldError("sealed field is not base64url")
    blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    if len(blob) < _MIN_BLOB:
        raise SealedFieldError("sealed field is too short to hold a value")
    return (subject_id, int(version)), blob


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


Contracts = Mapping[str, type[CloudEvent]]  # event type -> contract, as a consumer's topic has them


def tokens_in(raw: bytes, contracts: Contracts | None = None) -> list[tuple[str, str]] | None:
    """(field, token) pairs of the sealed fields in `raw`, or None when it holds none.

    Only fields that the message's contract declares personal data count, and only
    for contracts whose producer seals them (`SEALED_AT_SOURCE`): a value in FS's
    `graduated` that looks like a token is data. `contracts` defaults to every
    registered contract.
    """
    if MARKER not in raw:
        return None
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return None  # not JSON: the contract check will say so
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        return None
    contract = (_registered() if contracts is None else contracts).get(doc["type"])
    data = doc.get("data")
    if contract is None or not contract.SEALED_AT_SOURCE or not isinstance(data, dict):
        return None
    found = [(k, v) for k in sealed_fields_of(contract) if isinstance(v := data.get(k), str) and v.startswith(PREFIX)]
    return found or None


@functools.cache
def sealed_fields_of(contract: type[CloudEvent]) -> frozenset[str]:
    """The `data` fields that `contract`'s producer seals (none for inbound contracts)."""
    data_model = contract.model_fields["data"].annotation
    if not contract.SEALED_AT_SOURCE or not (isinstance(data_model, type) and issubclass(data_model, BaseModel)):
        return frozenset()
    return _personal_fields_of(data_model)


@functools.cache
def _registered() -> dict[str, type[CloudEvent]]:
    from usn_schemas.registry import TOPIC_CONTRACTS  # the registry imports every contract: load it on use

    return {t: c for contracts in TOPIC_CONTRACTS.values() for t, c in contracts.items()}


def key_ids(tokens: Iterable[tuple[str, str]]) -> set[KeyId]:
    ids = set()
    for _, token in tokens:
        with_key, _ = parse_token(token)
        ids.add(with_key)
    return ids


def open_event(raw: bytes, secrets: dict[KeyId, bytes], fields: Iterable[str] | None = None) -> bytes | None:
    """`raw` with its sealed `fields` opened (default: every top-level token of `data`);
    None when a key is gone (an erased subject)."""
    doc = json.loads(raw)
    data = doc["data"]
    names = list(data) if fields is None else [f for f in fields if f in data]
    for name in names:
        value = data[name]
        if isinstance(value, str) and value.startswith(PREFIX):
            try:
                data[name] = open_value(value, name, secrets)
            except KeyError:
                return None
    return to_json(doc)


ERASED = None  # what `open_batch` gives for a message whose subject's key is gone


class KeyRequestRefusedError(Exception):
    """The key service refused a lookup (HTTP 4xx): the request, so the message asking, is at fault."""


async def open_batch(
    values: list[bytes | None], keyring: KeyRing | None, contracts: Contracts | None = None
) -> list[bytes | SealedFieldError | None]:
    """Each value with its sealed fields opened (one key lookup for the whole batch).

    Unsealed values come back as they are; ERASED (None) marks a message of an
    erased subject, and a SealedFieldError one whose tokens are broken or whose
    keys the key service refused. A value that was None to begin with stays None
    only if it held no tokens, which the caller tells apart by looking at the
    original. `contracts` are the topic's (see `tokens_in`).
    """
    found = [tokens_in(v, contracts) if v is not None else None for v in values]
    if not any(found):
        return list(values)
    out: list[bytes | SealedFieldError | None] = list(values)
    wanted: dict[int, set[KeyId]] = {}
    for i, tokens in enumerate(found):
        if tokens:
            try:
                wanted[i] = key_ids(tokens)
            except SealedFieldError as exc:
                out[i] = exc
    if keyring is None:
        raise RuntimeError("sealed personal data arrived but this service has no key ring")
    secrets = await _lookup(keyring, wanted, out)
    for i in wanted:
        raw, tokens = values[i], found[i]
        if raw is not None and tokens and not isinstance(out[i], SealedFieldError):
            try:
                out[i] = open_event(raw, secrets, [name for name, _ in tokens])
            except SealedFieldError as exc:
                out[i] = exc
    return out


async def _lookup(
    keyring: KeyRing, wanted: dict[int, set[KeyId]], out: list[bytes | SealedFieldError | None]
) -> dict[KeyId, bytes]:
    """One lookup for all of `wanted`; when the key service refuses it, one per message,
    so that only the messages whose request it refuses are marked (in `out`)."""
    try:
        return await keyring.lookup(set().union(*wanted.values()))
    except KeyRequestRefusedError:
        pass
    secrets: dict[KeyId, bytes] = {}
    for i, ids in wanted.items():
        try:
            secrets |= await keyring.lookup(ids)
        except KeyRequestRefusedError as exc:
            out[i] = SealedFieldError(f"the key service refused this message's keys ({exc})")
    return secrets
