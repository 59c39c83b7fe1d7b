"""The platform's topics, partitions and retention, and `alumni-topics` to create them.

High-volume topics (graduated and the member facts it fans out to) get 6
partitions: enough for 6 consumer replicas, cheap on a single broker.
"""

from __future__ import annotations

import argparse
import asyncio

from alumni_kit.kafka import TopicSpec, ensure_topics, with_dlq

MIB = 1024 * 1024

PLATFORM_TOPICS: list[TopicSpec] = [
    # Inbound from FS. Accepts up to 4 MiB so that an oversized message reaches
    # the consumer and is dead-lettered with a reason instead of being refused
    # at the producer with none.
    *with_dlq(TopicSpec("graduated", 6, max_message_bytes=4 * MIB)),
    TopicSpec("member-registered", 6),
    TopicSpec("member-updated", 6),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="alumni-topics", description="Create the platform's Kafka topics.")
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--prefix", default="", help="topic name prefix (ALUMNI_TOPIC_PREFIX of the services)")
    args = parser.parse_args(argv)
    created = asyncio.run(ensure_topics(args.bootstrap, PLATFORM_TOPICS, args.prefix))
    print(f"topics: {len(PLATFORM_TOPICS)} declared, created now: {', '.join(created) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
