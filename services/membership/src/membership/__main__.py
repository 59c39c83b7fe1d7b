"""`alumni-membership` / `python -m membership`: run the service (HTTP + consumers + relay)."""

from __future__ import annotations

import uvicorn

from alumni_kit.logs import setup_logging
from alumni_kit.tracing import setup_tracing
from membership.app import create_app
from membership.settings import MembershipSettings


def main() -> None:
    settings = MembershipSettings()
    setup_logging("membership", settings.log_level)
    setup_tracing("membership", settings.otel_exporter)
    uvicorn.run(
        create_app(settings), host=settings.http_host, port=settings.http_port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
