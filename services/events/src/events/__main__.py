"""`alumni-events` / `python -m events`: run the service (HTTP + consumers + relay + offer expiry)."""

from __future__ import annotations

from alumni_kit.serve import serve
from events.app import create_app
from events.settings import EventsSettings


def main() -> None:
    serve("events", EventsSettings(), create_app)


if __name__ == "__main__":
    main()
