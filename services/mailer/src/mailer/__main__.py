"""`alumni-mailer` / `python -m mailer`: run the service (HTTP + consumers + relay)."""

from __future__ import annotations

import uvicorn

from alumni_kit.logs import setup_logging
from alumni_kit.tracing import setup_tracing
from mailer.app import create_app
from mailer.settings import MailerSettings


def main() -> None:
    settings = MailerSettings()
    setup_logging("mailer", settings.log_level)
    setup_tracing("mailer", settings.otel_exporter)
    uvicorn.run(
        create_app(settings), host=settings.http_host, port=settings.http_port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
