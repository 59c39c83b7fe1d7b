"""`alumni`: replay topics, audit a member, handle dead letters, see consumer lag.

Exit codes (the same for every subcommand):
  0  done
  1  done, with findings: messages failing their contract (replay), a lag over
     --max-lag (lag), dead letters that cannot be redriven (dlq redrive)
  2  usage: bad arguments or options
  3  not found: no such topic, no fact about the member, no such dead letter or group
  4  unavailable: the broker or the key service did not answer
  5  refused: the key service refused the operator's token (replay --open)

Progress bars (rate, ETA) go to stderr when it is a terminal; results go to
stdout (or --to FILE), one JSON object a line with sorted keys, or a table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import IO, Any

from aiokafka.errors import KafkaConnectionError, KafkaError

from usn_tools.alumni import audit, dlq, lag, replay
from usn_tools.alumni.output import json_line, table, write_lines
from usn_tools.alumni.reading import TopicNotFoundError

OK, FINDINGS, USAGE, NOT_FOUND, UNAVAILABLE, REFUSED = 0, 1, 2, 3, 4, 5
EPILOG = __doc__.split("\n\n", 1)[1] if __doc__ else ""


class CommandError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], Coroutine[Any, Any, int]] = args.run
    try:
        return asyncio.run(run(args))
    except CommandError as exc:
        print(f"alumni: {exc}", file=sys.stderr)
        return exc.code
    except TopicNotFoundError as exc:
        print(f"alumni: no topic {exc} on {args.bootstrap}", file=sys.stderr)
        return NOT_FOUND
    except (KafkaConnectionError, KafkaError, OSError) as exc:
        print(f"alumni: the broker at {args.bootstrap} did not answer ({type(exc).__name__})", file=sys.stderr)
        return UNAVAILABLE
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--bootstrap",
        default=os.environ.get("ALUMNI_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
        help="Kafka bootstrap servers (env ALUMNI_KAFKA_BOOTSTRAP; default %(default)s)",
    )
    common.add_argument(
        "--prefix",
        default=os.environ.get("ALUMNI_TOPIC_PREFIX", ""),
        help="topic name prefix, as the services' ALUMNI_TOPIC_PREFIX (default: none)",
    )
    common.add_argument(
        "--no-progress", dest="progress", action="store_false", default=None, help="no progress bar on stderr"
    )
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="alumni",
        description="USN Alumni operations: replay, audit, dead letters, lag.",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rp = sub.add_parser(
        "replay",
        parents=[common],
        formatter_class=fmt,
        help="read a topic read-only, checked against its contract",
        description=replay.__doc__,
        epilog=EPILOG,
    )
    rp.add_argument("topic", metavar="TOPIC", help="platform topic name, e.g. graduated (the prefix is added)")
    start = rp.add_mutually_exclusive_group()
    start.add_argument("--from-beginning", action="store_true", help="from each partition's first record (default)")
    start.add_argument("--from-offset", type=int, metavar="N", help="from offset N of each partition")
    start.add_argument(
        "--since", metavar="TIME", type=_time, help="from broker time TIME (ISO 8601, UTC if no offset; or epoch ms)"
    )
    rp.add_argument("--until", metavar="TIME", type=_time, help="up to, not including, broker time TIME")
    rp.add_argument("--key", metavar="K", help="only messages with Kafka key K")
    rp.add_argument("--subject", metavar="ID", help="only CloudEvents with subject ID")
    rp.add_argument(
        "--type", dest="event_type", metavar="T", help="only this event type (e.g. graduated, or the whole type)"
    )
    rp.add_argument("--to", metavar="FILE.jsonl", type=Path, help="write the lines to FILE instead of stdout")
    rp.add_argument(
        "--open",
        action="store_true",
        help="open sealed fields with keys from membership, shown the operator token in ALUMNI_OPERATOR_TOKEN "
        "(alumni-token operator; the operator must be in MEMBERSHIP_KEY_OPERATORS)",
    )
    rp.add_argument(
        "--membership-url",
        default=os.environ.get("ALUMNI_MEMBERSHIP_URL", "http://127.0.0.1:8101"),
        help="the key service (env ALUMNI_MEMBERSHIP_URL; default %(default)s)",
    )
    rp.set_defaults(run=_replay)

    au = sub.add_parser(
        "audit", formatter_class=fmt, help="every fact about one member", description=audit.__doc__, epilog=EPILOG
    )
    au_sub = au.add_subparsers(dest="what", required=True, metavar="WHAT")
    member = au_sub.add_parser(
        "member",
        parents=[common],
        formatter_class=fmt,
        help="every fact about one member, in time order",
        description=audit.__doc__,
        epilog=EPILOG,
    )
    member.add_argument("member_id", metavar="MEMBER_ID")
    member.add_argument("--json", action="store_true", help="one JSON object a line instead of a table")
    member.set_defaults(run=_audit)

    dl = sub.add_parser(
        "dlq", formatter_class=fmt, help="dead letters: list, show, redrive", description=dlq.__doc__, epilog=EPILOG
    )
    dl_sub = dl.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (
        ("list", "every dead letter: where from, which consumer, why"),
        ("show", "one dead letter in detail (still no key or value)"),
        ("redrive", "publish dead letters back to their original topic"),
    ):
        p = dl_sub.add_parser(
            name, parents=[common], formatter_class=fmt, help=text, description=dlq.__doc__, epilog=EPILOG
        )
        p.add_argument("topic", metavar="TOPIC", help="the topic or its DLQ: graduated or graduated.dlq")
        if name == "list":
            p.add_argument("--json", action="store_true", help="one JSON object a line instead of a table")
        if name == "show":
            p.add_argument("offset", type=int, metavar="OFFSET", help="the dead letter's offset in the DLQ")
        if name == "redrive":
            which = p.add_mutually_exclusive_group(required=True)
            which.add_argument("--offsets", type=_offsets, metavar="N,M", help="comma-separated DLQ offsets")
            which.add_argument("--all", action="store_true", help="every dead letter in the DLQ")
        p.set_defaults(run=_dlq)

    lg = sub.add_parser(
        "lag",
        parents=[common],
        formatter_class=fmt,
        help="consumer lag per group and partition",
        description=lag.__doc__,
        epilog=EPILOG,
    )
    lg.add_argument(
        "group", nargs="?", metavar="GROUP", help="one group (consent.member-registered) or service (consent)"
    )
    lg.add_argument("--json", action="store_true", help="one JSON object a line instead of a table")
    lg.add_argument("--max-lag", type=int, metavar="N", help="exit 1 when a partition lags more than N")
    lg.set_defaults(run=_lag)
    return parser


def _time(text: str) -> int:
    try:
        return replay.parse_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (ISO 8601, e.g. 2026-12-02T10:00:00Z)") from None


def _offsets(text: str) -> set[int]:
    try:
        return {int(part) for part in text.split(",") if part.strip()}
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of offsets: {text!r}") from None


async def _replay(args: argparse.Namespace) -> int:
    keyring = None
    if args.open:
        token = os.environ.get("ALUMNI_OPERATOR_TOKEN", "").strip()
        if not token:
            raise CommandError(USAGE, "--open needs an operator token in ALUMNI_OPERATOR_TOKEN (alumni-token operator)")
        from usn_tools.alumni.keys import OperatorKeyRing

        keyring = OperatorKeyRing(args.membership_url, token)
    window = replay.Window(args.from_offset, args.since, args.until)
    filters = replay.Filters(args.key, args.subject, args.event_type)
    out: IO[str] = args.to.open("w", encoding="utf-8") if args.to else sys.stdout
    try:
        summary = await replay.replay(
            args.bootstrap, args.topic, args.prefix, window, filters, out, keyring, args.progress
        )
    except replay.KeysRefusedError as exc:
        raise CommandError(REFUSED, f"the key service refused the operator token ({exc})") from None
    except OSError as exc:
        if keyring is not None and _key_service_down(exc):
            raise CommandError(UNAVAILABLE, f"the key service did not answer ({exc})") from None
        raise
    finally:
        if keyring is not None:
            await keyring.close()
        if args.to:
            out.close()
    replay.report(summary, str(args.to) if args.to else "stdout")
    return FINDINGS if summary.invalid else OK


def _key_service_down(exc: OSError) -> bool:
    from usn_tools.alumni.keys import KeyServiceUnavailableError

    return isinstance(exc, KeyServiceUnavailableError)


async def _audit(args: argparse.Namespace) -> int:
    facts = await audit.audit_member(args.bootstrap, args.prefix, args.member_id, args.progress)
    if not facts:
        raise CommandError(NOT_FOUND, f"no fact about member {args.member_id} on any topic")
    if args.json:
        audit.print_json(facts, sys.stdout)
    else:
        audit.print_table(args.member_id, facts, sys.stdout)
    return OK


async def _dlq(args: argparse.Namespace) -> int:
    name = args.prefix + dlq.dlq_name(args.topic.removeprefix(args.prefix))
    letters = await dlq.read_dead_letters(args.bootstrap, name, args.progress)
    if args.action == "list":
        if args.json:
            write_lines((d.summary() for d in letters), sys.stdout)
        else:
            rows = [
                [
                    str(d.offset),
                    d.origin,
                    d.header("dlq.consumer.group"),
                    d.header("dlq.error.kind"),
                    d.header("dlq.error.reason"),
                ]
                for d in letters
            ]
            table(rows, ["OFFSET", "FROM", "GROUP", "KIND", "REASON"], sys.stdout)
            print(f"{len(letters)} dead letters in {name}", file=sys.stderr)
        return OK
    if args.action == "show":
        found = [d for d in letters if d.offset == args.offset]
        if not found:
            raise CommandError(NOT_FOUND, f"no dead letter at offset {args.offset} of {name}")
        print(json_line(found[0].details()))
        return OK
    chosen = letters if args.all else [d for d in letters if d.offset in args.offsets]
    missing = set() if args.all else args.offsets - {d.offset for d in chosen}
    if missing:
        raise CommandError(NOT_FOUND, f"no dead letter at offset(s) {', '.join(map(str, sorted(missing)))} of {name}")
    sendable = [d for d in chosen if dlq.redrivable(d)]
    sent = await dlq.redrive(args.bootstrap, sendable)
    print(f"redrove {sent} of {len(chosen)} dead letters from {name}", file=sys.stderr)
    for d in chosen:
        if d not in sendable:
            print(
                f"  offset {d.offset}: kept no value (refused for its size); the original is at {d.origin}",
                file=sys.stderr,
            )
    return OK if sent == len(chosen) else FINDINGS


async def _lag(args: argparse.Namespace) -> int:
    rows = await lag.lags(args.bootstrap, args.prefix, args.group)
    if args.group and not rows:
        raise CommandError(NOT_FOUND, f"no consumer group {args.group!r} of the platform")
    if args.json:
        write_lines((r.as_dict() for r in rows), sys.stdout)
    else:
        cells = [
            [
                r.group,
                r.topic,
                str(r.partition),
                "-" if r.committed is None else str(r.committed),
                str(r.end),
                str(r.lag),
            ]
            for r in rows
        ]
        table(cells, ["GROUP", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG"], sys.stdout)
    over = [r for r in rows if args.max_lag is not None and r.lag > args.max_lag]
    return FINDINGS if over else OK
