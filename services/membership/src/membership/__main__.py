"""`alumni-membership` / `python -m membership`: run the service (HTTP + consumers + relay)."""

from __future__ import annotations

from alumni_kit.serve import serve
from membership.app import create_app
from membership.settings import MembershipSettings


def main() -> None:
    serve("membership", MembershipSettings(), create_app)


if __name__ == "__main__":
    main()
