"""`alumni-mailer` / `python -m mailer`: run the service (HTTP + consumers + relay)."""

from __future__ import annotations

from alumni_kit.serve import serve
from mailer.app import create_app
from mailer.settings import MailerSettings


def main() -> None:
    serve("mailer", MailerSettings(), create_app)


if __name__ == "__main__":
    main()
