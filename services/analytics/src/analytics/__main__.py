"""`alumni-analytics` / `python -m analytics`: run the service; `rebuild`; `as-of MOMENT`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from alumni_kit.logs import setup_logging
from alumni_kit.serve import serve
from analytics.app import create_app
from analytics.read.scope import ParameterError, parse_as_of
from analytics.rebuild import AsOfBusyError, NothingBeforeError, as_of_generation, rebuild
from analytics.settings import AnalyticsSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="alumni-analytics", description="USN Alumni analytics")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the service (the default)")
    rebuild_cmd = commands.add_parser("rebuild", help="every projection from offset 0, switched live when caught up")
    rebuild_cmd.add_argument("--no-progress", action="store_true", help="no progress bar")
    as_of_cmd = commands.add_parser("as-of", help="the projections as they stood at a past moment (RFC 3339)")
    as_of_cmd.add_argument("moment", help="RFC 3339 with an offset, e.g. 2026-06-30T12:00:00Z")
    args = parser.parse_args(argv)
    settings = AnalyticsSettings()
    if args.command in (None, "serve"):
        serve("analytics", settings, create_app)
        return 0
    setup_logging("analytics", settings.log_level)
    if args.command == "rebuild":
        name = asyncio.run(rebuild(settings, settings.weights(), progress=not args.no_progress))
        print(f"live generation: {name}")
        return 0
    # The same rules as the API's `?as_of=` (read/scope.py); a refusal exits 2 with its reason.
    try:
        moment = parse_as_of(args.moment, datetime.now(UTC))
        assert moment is not None
        print(asyncio.run(as_of_generation(settings, settings.weights(), moment, progress=True)))
    except ParameterError as exc:
        as_of_cmd.error(f"MOMENT {args.moment!r}: {exc.msg}")
    except NothingBeforeError as exc:
        as_of_cmd.error(f"MOMENT {args.moment!r}: {exc}")
    except AsOfBusyError as exc:
        print(f"alumni-analytics as-of: {exc}", file=sys.stderr)
        return 75  # EX_TEMPFAIL: try again later
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
