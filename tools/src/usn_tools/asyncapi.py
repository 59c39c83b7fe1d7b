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

from faststream.specification import AsyncAPI

from alumni_kit.auth import TokenSigner, parse_keys
from alumni_kit.runtime import ServiceRuntime
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


def render(name: str) -> str:
    runtime = SERVICES[name]()
    spec = AsyncAPI(
        runtime.broker,
        title=f"USN Alumni {name}",
        version="1.0.0",
        description=f"Topics the {name} service consumes and produces (CloudEvents 1.0, JSON).",
    )
    doc = json.loads(spec.to_specification().to_json())
    doc["servers"] = {}  # the address is deployment config, not contract
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


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
