"""Generate the AsyncAPI documents from the services' code (FastStream's generator).

python -m usn_tools.asyncapi          # write schemas/asyncapi/*.json
python -m usn_tools.asyncapi --check  # exit 1 if a checked-in document is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from faststream.specification import AsyncAPI

from alumni_kit.auth import TokenSigner, parse_keys
from alumni_kit.runtime import ServiceRuntime
from alumni_kit.topics import topic_key, topic_spec
from analytics.app import create_runtime as analytics_runtime
from analytics.settings import AnalyticsSettings
from consent.app import create_runtime as consent_runtime
from consent.links import Links
from consent.settings import ConsentSettings
from events.app import create_runtime as events_runtime
from events.settings import EventsSettings
from mailer.app import create_runtime as mailer_runtime
from mailer.settings import MailerSettings
from membership.app import create_runtime as membership_runtime
from membership.settings import MembershipSettings

OUT = Path(__file__).resolve().parents[3] / "schemas" / "asyncapi"
# Signs nothing that leaves this process: the runtime needs links only to build its handlers.
DOCS_SIGNER = TokenSigner(parse_keys("asyncapi:documents-only-not-a-signing-key"))


def _consent() -> ServiceRuntime:
    settings = ConsentSettings(topic_prefix="")
    return consent_runtime(settings, Links(DOCS_SIGNER, settings.public_base_url))


SERVICES: dict[str, Callable[[], ServiceRuntime]] = {
    "membership": lambda: membership_runtime(MembershipSettings(topic_prefix="")),
    "consent": _consent,
    "mailer": lambda: mailer_runtime(MailerSettings(topic_prefix="")),
    "events": lambda: events_runtime(EventsSettings(topic_prefix="")),
    "analytics": lambda: analytics_runtime(AnalyticsSettings(topic_prefix="")),
}


# Where the topics live. Local: the no-Docker stack (scripts/platform, scripts/kafka);
# production: the Kubernetes base's ALUMNI_KAFKA_BOOTSTRAP (deploy/k8s/base/alumni-common.yaml).
SERVERS: dict[str, dict[str, Any]] = {
    "local": {
        "host": "127.0.0.1:19092",
        "protocol": "kafka",
        "protocolVersion": "3.9.1",
        "description": "The local stack (scripts/platform up); docker-compose publishes the same port.",
    },
    "production": {
        "host": "kafka-bootstrap.kafka.svc:9092",
        "protocol": "kafka",
        "description": "The cluster's Kafka as the Kubernetes base names it (ALUMNI_KAFKA_BOOTSTRAP); "
        "topic names carry ALUMNI_TOPIC_PREFIX.",
    },
}
KAFKA_BINDING = "0.5.0"


def _with_servers_and_bindings(doc: dict[str, Any]) -> dict[str, Any]:
    """Real servers, and each channel's topic, partitions, configuration and key from alumni_kit.topics.

    FastStream points every channel at a server `development` it does not write; the
    topics' shapes are the platform's declaration, not the broker objects' guess.
    """
    doc["servers"] = SERVERS
    refs = [{"$ref": f"#/servers/{server}"} for server in SERVERS]
    for channel in doc["channels"].values():
        spec = topic_spec(channel["address"])
        channel["servers"] = refs
        channel["bindings"] = {
            "kafka": {
                "bindingVersion": KAFKA_BINDING,
                "topic": spec.name,
                "partitions": spec.partitions,
                "topicConfiguration": {
                    "retention.ms": spec.retention_ms,
                    "max.message.bytes": spec.max_message_bytes,
                },
            }
        }
        key = {"type": "string", "description": f"Kafka key: {topic_key(spec.name)}"}
        for ref in channel["messages"].values():
            message = doc["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]
            message["bindings"] = {"kafka": {"bindingVersion": KAFKA_BINDING, "key": key}}
    return doc


def document(name: str) -> dict[str, Any]:
    """The AsyncAPI document of service `name`, built from its runtime."""
    runtime = SERVICES[name]()
    spec = AsyncAPI(
        runtime.broker,
        title=f"USN Alumni {name}",
        version="1.0.0",
        description=f"Topics the {name} service consumes and produces (CloudEvents 1.0, JSON).",
    )
    return _with_servers_and_bindings(json.loads(spec.to_specification().to_json()))


def render(name: str) -> str:
    return json.dumps(document(name), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="usn_tools.asyncapi")
    parser.add_argument("--check", action="store_true", help="fail if a checked-in document differs")
    args = parser.parse_args(argv)
    stale = []
    for name in SERVICES:
        path = OUT / f"{name}.json"
        text = render(name)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            OUT.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print("stale AsyncAPI documents (run python -m usn_tools.asyncapi):", *stale, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
