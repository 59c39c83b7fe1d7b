"""Inspect and put back outbox rows the broker refused (the relay's quarantine).

    python -m usn_tools.outbox list --service membership
    python -m usn_tools.outbox show 4711 --service membership
    python -m usn_tools.outbox retry 4711 --service membership       # or --all

The relay moves a row to `outbox_quarantine` after the broker refused it
`<SVC>_OUTBOX_MAX_ATTEMPTS` times (e.g. larger than its topic's max.message.bytes);
see docs/guarantees.md. `list` and `show` print where a row was going, its
entity (the Kafka key: a member or campaign id), its event's type and id, its
size, the error and the times, never its value (it may hold personal data, sealed
or not). `retry` moves rows back into the outbox under their own ids, so they are
the next ones published, once the cause is fixed (the topic's limit raised, …);
a row that is still refused comes back here after the same attempts.

Each service has its own database: `--service` picks the local default
(`<SERVICE>_DATABASE_URL` if set), `--database-url` any other.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from alumni_kit.outbox import OUTBOX_CHANNEL

SERVICES = ("membership", "consent", "mailer")

_COLUMNS = """id, topic, key, octet_length(value) AS value_bytes, headers, created_at, attempts,
              error_class, error_reason, quarantined_at"""
_RETRY = """
WITH back AS (DELETE FROM outbox_quarantine WHERE id = ANY($1::bigint[])
              RETURNING id, topic, key, value, headers, created_at)
INSERT INTO outbox (id, topic, key, value, headers, created_at) SELECT * FROM back RETURNING id
"""


@dataclass(frozen=True)
class Quarantined:
    id: int
    topic: str
    entity: str
    event_type: str
    event_id: str
    value_bytes: int
    header_names: list[str]
    created_at: datetime
    attempts: int
    error_class: str
    error_reason: str
    quarantined_at: datetime


def database_url(service: str) -> str:
    default = f"postgresql://{service}:{service}-dev@127.0.0.1:55432/{service}"
    return os.environ.get(f"{service.upper()}_DATABASE_URL", default)


def _envelope(value: bytes) -> tuple[str, str]:
    """The event's type and id: envelope fields, clear even when personal fields are sealed."""
    try:
        doc = json.loads(value)
        return str(doc.get("type", "?")), str(doc.get("id", "?"))
    except (ValueError, AttributeError):
        return "?", "?"


def _row(r: asyncpg.Record, value: bytes) -> Quarantined:
    event_type, event_id = _envelope(value)
    return Quarantined(
        id=r["id"],
        topic=r["topic"],
        entity=bytes(r["key"]).decode(errors="replace"),
        event_type=event_type,
        event_id=event_id,
        value_bytes=r["value_bytes"],
        header_names=sorted(json.loads(r["headers"])),
        created_at=r["created_at"],
        attempts=r["attempts"],
        error_class=r["error_class"],
        error_reason=r["error_reason"],
        quarantined_at=r["quarantined_at"],
    )


async def read_quarantine(dsn: str, ids: Sequence[int] | None = None) -> list[Quarantined]:
    """Quarantined rows (all, or those of `ids`), oldest first. The value is read only to
    take the envelope's type and id from it; it never leaves this function."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            f"SELECT {_COLUMNS}, value FROM outbox_quarantine WHERE $1::bigint[] IS NULL OR id = ANY($1) ORDER BY id",
            None if ids is None else list(ids),
        )
        return [_row(r, r["value"]) for r in rows]
    finally:
        await conn.close()


async def retry(dsn: str, ids: Sequence[int] | None) -> list[int]:
    """Move rows (all when `ids` is None) back into the outbox and wake the relay."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            wanted = ids if ids is not None else [r[0] for r in await conn.fetch("SELECT id FROM outbox_quarantine")]
            back = [r[0] for r in await conn.fetch(_RETRY, list(wanted))]
            await conn.execute(f"NOTIFY {OUTBOX_CHANNEL}")
        return sorted(back)
    finally:
        await conn.close()


def _line(q: Quarantined) -> str:
    when = q.quarantined_at.strftime("%Y-%m-%d %H:%M:%S%z")
    return f"{q.id:>10}  {when}  {q.topic:<30} {q.entity[:36]:<36} {q.value_bytes:>10} B  {q.error_class} ×{q.attempts}"


def _details(q: Quarantined) -> str:
    return "\n".join(
        [
            f"id             {q.id}",
            f"topic          {q.topic}",
            f"entity (key)   {q.entity}",
            f"event          {q.event_type} {q.event_id}",
            f"value          {q.value_bytes} bytes (not shown)",
            f"headers        {', '.join(q.header_names) or '-'}",
            f"written        {q.created_at.isoformat()}",
            f"quarantined    {q.quarantined_at.isoformat()} after {q.attempts} refusals",
            f"error          {q.error_class}",
            f"reason         {q.error_reason}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="usn_tools.outbox", description="The outbox quarantine of one service.")
    parser.add_argument("command", choices=["list", "show", "retry"])
    parser.add_argument("ids", nargs="*", type=int, help="quarantined row ids (show, retry)")
    parser.add_argument("--service", choices=SERVICES, default="membership")
    parser.add_argument("--database-url", help="the service's database (default: from --service)")
    parser.add_argument("--all", action="store_true", help="retry every quarantined row")
    args = parser.parse_args(argv)
    dsn = args.database_url or database_url(args.service)

    if args.command == "list":
        rows = asyncio.run(read_quarantine(dsn))
        print(f"{'id':>10}  {'quarantined':<24}  {'topic':<30} {'entity':<36} {'size':>12}  error")
        for q in rows:
            print(_line(q))
        print(f"{len(rows)} row{'' if len(rows) == 1 else 's'} in quarantine")
        return 0
    if args.command == "show":
        if not args.ids:
            parser.error("show needs row ids")
        rows = asyncio.run(read_quarantine(dsn, args.ids))
        print("\n\n".join(_details(q) for q in rows))
        missing = set(args.ids) - {q.id for q in rows}
        if missing:
            print(f"not in quarantine: {', '.join(map(str, sorted(missing)))}")
        return 0 if not missing else 1
    if not (args.all or args.ids):
        parser.error("retry needs row ids or --all")
    back = asyncio.run(retry(dsn, None if args.all else args.ids))
    print(f"put back into the outbox: {', '.join(map(str, back)) or 'nothing'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
