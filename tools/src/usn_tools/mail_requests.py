"""Look at the mail the services asked the mailer to send (topic `transactional-mail-requested`).

    python -m usn_tools.mail_requests                          # the 20 newest, nothing personal
    python -m usn_tools.mail_requests --latest --kind consent-invitation
    python -m usn_tools.mail_requests --member 4f1c… --with-link   # adds the personal link
    python -m usn_tools.mail_requests --latest --show-personal     # whole requests, as JSON

By default a line is: event time, kind, member id, language, expiry; the fields
the contract marks as personal data (address, name, body, link) are left out.
`--with-link` adds the action link (signed, personal: e.g. the operator's own
demo or a member's support case); `--show-personal` prints the whole request.
The topic keeps 30 days of requests, so only the newest `--scan` messages of
each partition are read. Personal fields travel sealed (docs/erasure.md): they
are opened with keys from membership (`--membership-url`, with a service token
signed with ALUMNI_SIGNING_KEYS); requests of erased members stay unreadable.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer

from alumni_kit.auth import TokenSigner, parse_keys
from alumni_kit.keyring_http import HttpKeyRing
from alumni_kit.settings import ServiceSettings
from alumni_kit.shredding import KeyRing, open_batch
from usn_schemas.envelope import ContractError, parse_envelope
from usn_schemas.mail import TransactionalMailRequestedV1
from usn_schemas.registry import TOPIC_CONTRACTS

TOPIC = "transactional-mail-requested"


@dataclass(frozen=True)
class Found:
    requests: list[TransactionalMailRequestedV1]
    unreadable: int


async def read_recent(bootstrap: str, topic: str, scan: int, keyring: KeyRing) -> Found:
    """The newest `scan` requests of each partition, oldest first by event time."""
    # No group: every partition of the topic is assigned at start, nothing is committed.
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = sorted(consumer.assignment(), key=lambda tp: tp.partition)
        if not partitions:
            return Found([], 0)
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, max(starts[tp], ends[tp] - scan))
        requests: list[TransactionalMailRequestedV1] = []
        unreadable = 0
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(*partitions, timeout_ms=1000)).values():
                for value in await open_batch([r.value for r in records], keyring):
                    try:
                        if not isinstance(value, bytes):
                            raise ContractError("unreadable", "erased member or broken seal")
                        event = parse_envelope(value, TOPIC_CONTRACTS[TOPIC])
                    except ContractError:
                        unreadable += 1
                        continue
                    assert isinstance(event, TransactionalMailRequestedV1)
                    requests.append(event)
        requests.sort(key=lambda e: e.time)
        return Found(requests, unreadable)
    finally:
        await consumer.stop()
        if isinstance(keyring, HttpKeyRing):
            await keyring.close()


def select(found: Found, kind: str | None, member: str | None, limit: int) -> list[TransactionalMailRequestedV1]:
    chosen = [
        e
        for e in found.requests
        if (kind is None or e.data.kind == kind) and (member is None or e.data.member_id == member)
    ]
    return chosen[-limit:]


def line(event: TransactionalMailRequestedV1, with_link: bool) -> str:
    mail = event.data
    expires = mail.expires_at.isoformat(timespec="seconds") if mail.expires_at else "-"
    cells = [event.time.isoformat(timespec="seconds"), mail.kind, mail.member_id or "-", mail.language, expires]
    if with_link:
        cells.append(mail.action_url or "-")
    return "\t".join(cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="usn_tools.mail_requests", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--topic-prefix", default="", help="ALUMNI_TOPIC_PREFIX of the services")
    parser.add_argument("--membership-url", default="http://127.0.0.1:8101", help="where the keys are")
    parser.add_argument("--kind", help="only this kind, e.g. consent-invitation, consent-confirmation")
    parser.add_argument("--member", help="only requests for this member id")
    parser.add_argument("--limit", type=int, default=20, help="print the newest N (default 20)")
    parser.add_argument("--latest", action="store_true", help="print only the newest one (--limit 1)")
    parser.add_argument("--scan", type=int, default=1000, help="newest messages read per partition (default 1000)")
    parser.add_argument("--wait", type=float, default=0, help="wait up to S seconds for a matching request")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--with-link", action="store_true", help="add the action link (personal data)")
    shown.add_argument("--show-personal", action="store_true", help="print whole requests as JSON (personal data)")
    args = parser.parse_args(argv)
    if args.limit < 1 or args.scan < 1:
        parser.error("--limit and --scan must be at least 1")
    limit = 1 if args.latest else args.limit
    topic = args.topic_prefix + TOPIC

    signer = TokenSigner(parse_keys(ServiceSettings().signing_keys.get_secret_value()))
    keyring = HttpKeyRing(args.membership_url, signer, "usn-tools", cache_seconds=0)
    deadline = time.monotonic() + args.wait
    while True:
        found = asyncio.run(read_recent(args.bootstrap, topic, args.scan, keyring))
        chosen = select(found, args.kind, args.member, limit)
        if chosen or time.monotonic() >= deadline:
            break
        time.sleep(1)

    for event in chosen:
        print(event.model_dump_json(exclude_none=True) if args.show_personal else line(event, args.with_link))
    note = f" ({found.unreadable} unreadable, skipped)" if found.unreadable else ""
    print(f"{len(chosen)} of {len(found.requests)} mail requests read from {topic}{note}", file=sys.stderr)
    return 1 if args.wait and not chosen else 0


if __name__ == "__main__":
    raise SystemExit(main())
