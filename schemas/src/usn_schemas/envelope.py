"""CloudEvents 1.0 structured-JSON envelope shared by every contract.

Each contract is a subclass of `CloudEvent` that pins `type` (reverse-DNS with
the major version) and the model of `data`. Consumers ignore unknown fields
(`extra="ignore"`), so adding an optional field never breaks them.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from usn_schemas.ids import new_id

PERSONAL_DATA_KEY = "x-personal-data"
# Consumers keep counters such as `sequence` in PostgreSQL bigint columns.
MAX_BIGINT = 2**63 - 1


def PersonalData(default: Any = ..., **kwargs: Any) -> Any:  # noqa: N802 - reads like a type
    """A field holding personal data (GDPR): never logged, never a label or span attribute."""
    extra: dict[str, Any] = {PERSONAL_DATA_KEY: True}
    return Field(default, json_schema_extra=extra, **kwargs)


def personal_fields(model: type[BaseModel]) -> set[str]:
    """Names of the fields of `model` marked with `PersonalData`."""
    return {
        name
        for name, info in model.model_fields.items()
        if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get(PERSONAL_DATA_KEY)
    }


class ContractError(ValueError):
    """A message that does not meet its contract; `kind` names the failed check."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


class CloudEvent(BaseModel):
    """The envelope; subclasses set `EVENT_TYPE`, `MAX_BYTES` and annotate `data`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    EVENT_TYPE: ClassVar[str]
    # Messages far over this are refused before parsing: no contract here is that big.
    MAX_BYTES: ClassVar[int] = 64 * 1024
    # Whether the producer seals the `PersonalData` fields (crypto-shredding). True for
    # the platform's own facts (every service publishes through the sealing outbox);
    # False for inbound contracts from outside (FS publishes `graduated` in the clear):
    # there a value that looks like a sealed token is data, and is never opened.
    SEALED_AT_SOURCE: ClassVar[bool] = True

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=500)
    type: str
    time: AwareDatetime
    subject: str = Field(min_length=1, max_length=200)
    datacontenttype: Literal["application/json"] = "application/json"
    # CloudEvents extension: per-entity order for facts spread over several topics.
    sequence: int | None = Field(default=None, ge=0, le=MAX_BIGINT)
    data: Any

    @classmethod
    def create(
        cls,
        *,
        subject: str,
        data: Any,
        source: str,
        sequence: int | None = None,
        id: str | None = None,
        time: datetime | None = None,
    ) -> Self:
        """A new event of this contract; a fresh id and the current time unless given
        (a fact that has its own id, such as a consent fact, is published under it)."""
        return cls(
            specversion="1.0",
            id=id or new_id(),
            source=source,
            type=cls.EVENT_TYPE,
            time=time or datetime.now(UTC),
            subject=subject,
            sequence=sequence,
            data=data,
        )

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


BINARY_PREFIX = "ce_"  # the CloudEvents Kafka binding's attribute headers (binary content mode)


def is_binary_mode(headers: Sequence[tuple[str, bytes]] | None) -> bool:
    return any(name == "ce_specversion" for name, _ in headers or ())


def structured_from_binary(headers: Sequence[tuple[str, bytes]], value: bytes | None) -> bytes:
    """A binary-mode CloudEvent (attributes in `ce_*` headers, data as the value) as the
    structured JSON document the contracts parse; ContractError when it cannot be one.

    The platform publishes structured mode; this lets any producer use the binding's
    other mode (the CloudEvents SDKs' default), on every consumed topic alike.
    """
    doc: dict[str, Any] = {}
    for name, raw in headers:
        if name.startswith(BINARY_PREFIX) or name == "content-type":
            attribute = "datacontenttype" if name == "content-type" else name[len(BINARY_PREFIX) :]
            try:
                doc[attribute] = raw.decode()
            except (UnicodeDecodeError, AttributeError):
                raise ContractError("not-cloudevent", f"header {name[:40]!r} is not UTF-8 text") from None
    if value is not None and doc.get("datacontenttype", "application/json").split(";")[0].strip() == "application/json":
        try:
            doc["data"] = json.loads(value)
        except ValueError as exc:
            raise ContractError("not-json", f"the data is not JSON ({str(exc)[:200]})") from None
        except RecursionError:
            raise ContractError("not-json", "the data nests deeper than a JSON parser follows") from None
    else:
        doc["data"] = None if value is None else value.decode(errors="replace")
    if isinstance(doc.get("datacontenttype"), str):
        doc["datacontenttype"] = doc["datacontenttype"].split(";")[0].strip()
    try:
        # ASCII with escapes: a lone surrogate in the data (legal JSON) has no UTF-8 form.
        return json.dumps(doc).encode()
    except RecursionError:
        raise ContractError("not-json", "the data nests deeper than a JSON parser follows") from None


def parse_envelope(raw: bytes | None, contracts: dict[str, type[CloudEvent]]) -> CloudEvent:
    """Parse `raw` into the contract its `type` names, or raise ContractError saying why."""
    if raw is None:
        raise ContractError("empty", "the message has no value")
    limit = max(c.MAX_BYTES for c in contracts.values())
    if len(raw) > limit:
        raise ContractError("too-large", f"the value is {len(raw)} bytes; the contract allows {limit}")
    event = _parse(raw, contracts)
    if _MAYBE_UNSTORABLE.search(raw):
        _refuse_unstorable_text(event)
    return event


def _parse(raw: bytes, contracts: dict[str, type[CloudEvent]]) -> CloudEvent:
    if len(contracts) == 1:
        # Fast path for the common case: pydantic parses the JSON itself (about
        # twice as fast); on any failure the slow path below says precisely why.
        with contextlib.suppress(ValidationError):
            return next(iter(contracts.values())).model_validate_json(raw)
    try:
        doc = json.loads(raw)
    except ValueError as exc:  # not UTF-8, not JSON, or a number of more digits than Python converts
        raise ContractError("not-json", f"the value is not JSON ({str(exc)[:200]})") from None
    except RecursionError:
        raise ContractError("not-json", "the value nests deeper than a JSON parser follows") from None
    if not isinstance(doc, dict) or doc.get("specversion") is None or "type" not in doc:
        raise ContractError("not-cloudevent", "the value is not a CloudEvents 1.0 JSON object (specversion, type)")
    contract = contracts.get(doc["type"]) if isinstance(doc["type"], str) else None
    if contract is None:
        known = ", ".join(sorted(contracts))
        given = doc["type"]
        shown = repr(given[:120]) if isinstance(given, str) else f"of JSON type {type(given).__name__}"
        raise ContractError("unknown-type", f"type {shown} is not one of: {known}")
    try:
        return contract.model_validate(doc)
    except ValidationError as exc:
        raise ContractError("invalid", describe(exc)) from None


# Values a contract's types accept but no consumer can store: U+0000 (PostgreSQL text and
# jsonb cannot hold it), a lone surrogate (legal as a JSON escape, no UTF-8 form), a time in
# year 1 or 9999 whose offset puts it outside what a datetime holds in UTC. This finds the
# JSON escapes and those years in the raw value (cheap); only then is the event searched.
_MAYBE_UNSTORABLE = re.compile(rb'\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})|"(?:0001|9999)-')


def _refuse_unstorable_text(event: CloudEvent) -> None:
    """ContractError naming the first field whose value no consumer could store."""
    found = _unstorable_in(event.model_dump(), ())
    if found is not None:
        where, reason = found
        raise ContractError("invalid", f"{'.'.join(str(p) for p in where) or '(root)'}: {reason}")


_Found = tuple[tuple[str | int, ...], str]


def _unstorable_in(value: Any, path: tuple[str | int, ...]) -> _Found | None:
    if isinstance(value, str):
        if "\x00" in value:
            return path, "text may not contain U+0000"
        try:
            value.encode()
        except UnicodeEncodeError:
            return path, "text may not contain an unpaired surrogate"
        return None
    if isinstance(value, datetime):
        try:
            value.astimezone(UTC)
        except OverflowError:
            return path, "a time must have a UTC equivalent (year 1 to 9999)"
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list | tuple) else ()
    for key, inner in items:
        found = _unstorable_in(inner, (*path, key))
        if found is not None:
            return found
    return None


def describe(exc: ValidationError) -> str:
    """A readable reason naming the fields, never echoing their values (they may be personal data)."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:10]:
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
