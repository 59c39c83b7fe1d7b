"""`python -m usn_tools.demo`: publish the synthetic FS export to `graduated`.

Event ids are deterministic, so publishing the same set twice changes nothing
(the membership inbox drops the repeats): the platform command can run again safely.
"""

from __future__ import annotations

import argparse
import asyncio

from usn_tools.fs_demo import graduation_events
from usn_tools.publish import publish_events


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="usn_tools.demo", description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--events", type=int, default=2000, help="how many graduated events (default 2000)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--topic-prefix", default="")
    args = parser.parse_args(argv)
    sent = asyncio.run(
        publish_events(
            args.bootstrap,
            args.topic_prefix + "graduated",
            graduation_events(args.events, args.seed),
            total=args.events,
        )
    )
    print(f"published {sent} graduated events (seed {args.seed})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
