"""Each record against its topic's contract, as the services' consumers would take it.

Both CloudEvents content modes are read (binary mode is turned into the structured
document, as `alumni_kit.consumer` does). A sealed field (`pd1.…`) cannot be checked
without its key: a message whose only faults are sealed fields holding tokens counts
as valid ("sealed, not checked"); with `--open` the fields are opened first and the
whole message is checked. Reasons name fields, never values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from alumni_kit.shredding import SealedFieldError, key_ids, sealed_fields_of, tokens_in
from usn_schemas.envelope import (
    CloudEvent,
    ContractError,
    is_binary_mode,
    parse_envelope,
    structured_from_binary,
)
from usn_schemas.registry import TOPIC_CONTRACTS

Contracts = dict[str, type[CloudEvent]]


def contracts_of(topic: str, prefix: str) -> Contracts | None:
    """The contracts of a topic by its platform name (a DLQ holds its topic's messages)."""
    name = topic.removeprefix(prefix).removesuffix(".dlq")
    return TOPIC_CONTRACTS.get(name)


@dataclass
class Checked:
    """One record as read: its value in structured mode, the CloudEvent as JSON, the verdict."""

    record: ConsumerRecord
    mode: str  # "structured" or "binary"
    value: bytes | None  # structured-mode JSON (None: no value, or not convertible)
    event: dict[str, Any] | None
    error: ContractError | None = None
    sealed: list[str] = field(default_factory=list)  # fields still sealed
    erased: bool = False  # --open: her keys are gone, the sealed fields cannot be opened

    @property
    def valid(self) -> bool:
        return self.error is None

    def tokens(self, contracts: Contracts | None) -> list[tuple[str, str]]:
        return (tokens_in(self.value, contracts) or []) if self.value is not None else []


def read(record: ConsumerRecord) -> Checked:
    """The record's structured form and JSON document (not yet checked)."""
    binary = is_binary_mode(record.headers)
    mode = "binary" if binary else "structured"
    value: bytes | None = record.value
    if binary:
        try:
            value = structured_from_binary(list(record.headers), record.value)
        except ContractError as exc:
            return Checked(record, mode, None, None, exc)
    doc: Any = None
    if value is not None:
        try:
            doc = json.loads(value)
        except (ValueError, RecursionError):
            doc = None
    return Checked(record, mode, value, doc if isinstance(doc, dict) else None)


def check(item: Checked, contracts: Contracts | None) -> Checked:
    """Set `item.error` (None: valid) and `item.sealed`; `item.value` may have been opened."""
    if item.error is not None:
        return item
    if contracts is None:
        item.error = ContractError("unknown-topic", "no contract is registered for this topic")
        return item
    tokens = item.tokens(contracts)
    item.sealed = sorted(name for name, _ in tokens)
    try:
        if tokens:
            key_ids(tokens)  # a malformed token is the message's fault, key or no key
    except SealedFieldError as exc:
        item.error = ContractError("sealed-field", str(exc))
        return item
    try:
        parse_envelope(item.value, contracts)
    except ContractError as exc:
        if not (exc.kind == "invalid" and tokens and _only_sealed_faults(item, contracts, set(item.sealed))):
            item.error = exc
    return item


def _only_sealed_faults(item: Checked, contracts: Contracts, sealed: set[str]) -> bool:
    """Whether every validation error is in a field that holds a sealed token."""
    doc = item.event or {}
    contract = contracts.get(str(doc.get("type")))
    if contract is None or not sealed <= sealed_fields_of(contract):
        return False
    try:
        contract.model_validate(doc)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        rest = [e for e in errors if not (len(e["loc"]) >= 2 and e["loc"][0] == "data" and e["loc"][1] in sealed)]
        if rest:
            # Field names and messages only, as usn_schemas.envelope.describe: never values.
            reason = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in rest[:10])
            item.error = ContractError("invalid", reason)
        return not rest
    return True
