"""`alumni-consent` / `python -m consent`: run the service (HTTP + consumers + relay)."""

from __future__ import annotations

from alumni_kit.serve import serve
from consent.app import create_app
from consent.settings import ConsentSettings


def main() -> None:
    serve("consent", ConsentSettings(), create_app)


if __name__ == "__main__":
    main()
