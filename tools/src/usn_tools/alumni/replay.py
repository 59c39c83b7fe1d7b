"""`alumni replay TOPIC`: a topic's messages between two positions, checked, one JSON object a line.

Start: `--from-beginning` (the default), `--from-offset N` (each partition) or
`--since TIME`; end: `--until TIME` or each partition's end offset when the replay
starts. Times are broker timestamps, found with Kafka's offsets-for-times; the
window is [since, until). Messages come in broker-time order (then partition, offset).
Sealed personal data stays sealed unless `--open` is given with an operator token
the key service (membership) allows; for an erased member it cannot be opened, and
the line says `"erased": true`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from alumni_kit.shredding import ERASED, KeyRequestRefusedError, KeyRing, SealedFieldError, key_ids, open_batch
from usn_schemas.envelope import ContractError
from usn_tools.alumni.checking import Checked, Contracts, check, contracts_of, read
from usn_tools.alumni.output import iso_ms, text_or_base64, write_lines
from usn_tools.alumni.reading import Span, offsets_at, partitions_of, read_spans, reader, whole


class KeysRefusedError(Exception):
    """The key service refused the operator's token (HTTP 401/403)."""


@dataclass(frozen=True)
class Window:
    from_offset: int | None = None
    since_ms: int | None = None
    until_ms: int | None = None


@dataclass(frozen=True)
class Filters:
    key: str | None = None
    subject: str | None = None
    event_type: str | None = None

    def keeps(self, item: Checked) -> bool:
        if self.key is not None and item.record.key != self.key.encode():
            return False
        event = item.event or {}
        if self.subject is not None and event.get("subject") != self.subject:
            return False
        return self.event_type is None or type_matches(str(event.get("type", "")), self.event_type)


def type_matches(event_type: str, wanted: str) -> bool:
    """`wanted` is the whole type, or its name with or without the version:
    `graduated`, `graduated.v1` and `no.usn.fs.graduated.v1` all match FS's graduations."""
    if event_type == wanted:
        return True
    parts = event_type.split(".")
    return len(parts) >= 2 and wanted in (parts[-2], f"{parts[-2]}.{parts[-1]}")


@dataclass(frozen=True)
class Summary:
    messages: int
    invalid: int
    erased: int


async def replay(
    bootstrap: str,
    topic: str,
    prefix: str,
    window: Window,
    filters: Filters,
    out: IO[str],
    keyring: KeyRing | None = None,
    show_progress: bool | None = None,
) -> Summary:
    full = prefix + topic
    contracts = contracts_of(full, prefix)
    partitions = await partitions_of(bootstrap, full)
    async with reader(bootstrap) as consumer:
        spans = await whole(consumer, partitions)
        if window.from_offset is not None:
            spans = {tp: Span(max(s.start, min(window.from_offset, s.end)), s.end) for tp, s in spans.items()}
        if window.since_ms is not None:
            spans = _narrow(spans, await offsets_at(consumer, partitions, window.since_ms), start=True)
        if window.until_ms is not None:
            spans = _narrow(spans, await offsets_at(consumer, partitions, window.until_ms), start=False)
        records = await read_spans(consumer, spans, full, show_progress)
    chosen = [item for item in map(read, _in_window(records, window)) if filters.keeps(item)]
    if keyring is not None:
        await _open(chosen, contracts, keyring)
    checked = [check(item, contracts) for item in chosen]
    write_lines((line(item) for item in checked), out)
    return Summary(len(checked), sum(not c.valid for c in checked), sum(c.erased for c in checked))


def _narrow(
    spans: dict[TopicPartition, Span], at: dict[TopicPartition, int], start: bool
) -> dict[TopicPartition, Span]:
    if start:
        return {tp: Span(max(s.start, at[tp]), s.end) for tp, s in spans.items()}
    return {tp: Span(s.start, max(s.start, min(s.end, at[tp]))) for tp, s in spans.items()}


def _in_window(records: Iterable[ConsumerRecord], window: Window) -> list[ConsumerRecord]:
    """Records whose broker timestamp is in [since, until), in time order. The offsets found
    by time bound the read; this also drops the rare record whose producer-set timestamp
    is out of order with its neighbours'."""
    kept = [
        r
        for r in records
        if (window.since_ms is None or r.timestamp >= window.since_ms)
        and (window.until_ms is None or r.timestamp < window.until_ms)
    ]
    return sorted(kept, key=lambda r: (r.timestamp, r.partition, r.offset))


async def _open(items: list[Checked], contracts: Contracts | None, keyring: KeyRing) -> None:
    """Open the sealed fields of `items` in place; an erased member's stay sealed, marked."""
    sealed = [item for item in items if item.tokens(contracts)]
    if not sealed:
        return
    wanted = set()
    for item in sealed:
        try:
            wanted |= key_ids(item.tokens(contracts))
        except SealedFieldError:
            continue  # check() marks it
    try:
        await keyring.lookup(wanted)  # refused as a whole, or cached for open_batch below
    except KeyRequestRefusedError as exc:
        raise KeysRefusedError(str(exc)) from None
    opened = await open_batch([item.value for item in sealed], keyring, contracts)
    for item, value in zip(sealed, opened, strict=True):
        if value is ERASED:
            item.erased = True
        elif isinstance(value, SealedFieldError):
            item.error = ContractError("sealed-field", str(value))
        elif isinstance(value, bytes):
            item.value = value
            item.event = json.loads(value)


def line(item: Checked) -> dict[str, Any]:
    """The JSON line of one message."""
    r = item.record
    out: dict[str, Any] = {
        "topic": r.topic,
        "partition": r.partition,
        "offset": r.offset,
        "timestamp": iso_ms(r.timestamp),
        "key": text_or_base64(r.key).get("text"),
        "headers": [[name, text_or_base64(value)] for name, value in (r.headers or ())],
        "mode": item.mode,
        "event": item.event,
        "valid": item.valid,
    }
    if r.key is not None and out["key"] is None:
        out["key_base64"] = text_or_base64(r.key)["base64"]
    if item.event is None and r.value is not None:
        out["value_bytes"] = len(r.value)
    if item.error is not None:
        out["error"] = {"kind": item.error.kind, "reason": item.error.reason}
    if item.sealed:
        out["sealed"] = item.sealed
    if item.erased:
        out["erased"] = True
        out["note"] = "the member was erased: her keys are gone, the sealed fields cannot be opened"
    return out


def parse_time(text: str) -> int:
    """A time for --since/--until as epoch milliseconds: ISO 8601 (a date, or a date and
    time; without an offset it is UTC) or a number of milliseconds since the epoch."""
    if text.isdigit():
        return int(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def report(summary: Summary, destination: str) -> None:
    erased = f", {summary.erased} of erased members (sealed fields unreadable)" if summary.erased else ""
    print(
        f"{summary.messages} messages to {destination}, {summary.invalid} failing their contract{erased}",
        file=sys.stderr,
    )
