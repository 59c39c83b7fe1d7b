"""`alumni-consent` / `python -m consent`: run the service (HTTP + consumers + relay)."""

from __future__ import annotations

import uvicorn

from alumni_kit.logs import setup_logging
from alumni_kit.tracing import setup_tracing
from consent.app import create_app
from consent.settings import ConsentSettings


def main() -> None:
    settings = ConsentSettings()
    setup_logging("consent", settings.log_level)
    setup_tracing("consent", settings.otel_exporter)
    uvicorn.run(
        create_app(settings), host=settings.http_host, port=settings.http_port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
