"""Inspect and re-drive dead-lettered messages.

    python -m usn_tools.dlq list graduated.dlq
    python -m usn_tools.dlq redrive graduated.dlq --offsets 4,7      # or --all

`list` prints where each message came from and why it was refused, never its
value (it may hold personal data). `redrive` publishes the original key, value
and headers (the dlq.* ones removed) back to the original topic, e.g. after a
consumer bug was fixed; a message that is still bad is dead-lettered again.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from alumni_kit.dlq import DLQ_HEADERS, H_ERROR_KIND, H_OFFSET, H_PARTITION, H_REASON, H_TOPIC


@dataclass(frozen=True)
class DeadLetter:
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    def header(self, name: str) -> str:
        return next((v.decode(errors="replace") for k, v in self.headers if k == name), "")


async def read_dead_letters(bootstrap: str, dlq_topic: str) -> list[DeadLetter]:
    """Every message now in `dlq_topic` (a DLQ has one partition), oldest first."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(dlq_topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        out: list[DeadLetter] = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                out += [DeadLetter(r.offset, r.key, r.value, list(r.headers)) for r in records]
        return out
    finally:
        await consumer.stop()


async def redrive(bootstrap: str, letters: list[DeadLetter]) -> int:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", max_request_size=4 * 1024 * 1024
    )
    await producer.start()
    try:
        for letter in letters:
            headers = [(k, v) for k, v in letter.headers if k not in DLQ_HEADERS]
            await producer.send_and_wait(letter.header(H_TOPIC), key=letter.key, value=letter.value, headers=headers)
    finally:
        await producer.stop()
    return len(letters)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="usn_tools.dlq", description="Inspect and re-drive dead letters.")
    parser.add_argument("command", choices=["list", "redrive"])
    parser.add_argument("dlq_topic")
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--offsets", help="comma-separated DLQ offsets to re-drive")
    which.add_argument("--all", action="store_true", help="re-drive every message in the DLQ")
    args = parser.parse_args(argv)

    letters = asyncio.run(read_dead_letters(args.bootstrap, args.dlq_topic))
    if args.command == "list":
        for d in letters:
            origin = f"{d.header(H_TOPIC)}[{d.header(H_PARTITION)}]@{d.header(H_OFFSET)}"
            print(f"{d.offset:>8}  {origin:<32} {d.header(H_ERROR_KIND):<16} {d.header(H_REASON)}")
        print(f"{len(letters)} dead letters in {args.dlq_topic}")
        return 0
    if not (args.all or args.offsets):
        parser.error("redrive needs --offsets or --all")
    wanted = None if args.all else {int(o) for o in args.offsets.split(",")}
    chosen = [d for d in letters if wanted is None or d.offset in wanted]
    print(f"re-drove {asyncio.run(redrive(args.bootstrap, chosen))} messages from {args.dlq_topic}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
