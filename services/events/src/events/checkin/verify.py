"""`python -m events.checkin.verify`: the door's offline verifier (no database, no network
while checking).

    python -m events.checkin.verify sync  --url URL --event ID --token STAFF_TOKEN --dir DIR
    python -m events.checkin.verify check --event ID --dir DIR CODE…   (or codes on stdin, one a line)

`sync` fetches the public keys (`GET /checkin/keys`) and the event's signed revocation list
(`GET /events/{id}/checkin/revocations`), checks the list's signature and keeps it in DIR
unless DIR already holds a newer version. `check` prints `valid <registration id>` or
`refused: <why>` for each code; exit 0 when all are valid, 1 when any is refused, 2 when
the stored keys or list are missing or not genuine. A list older than `--max-age` minutes
is used, with a warning: cancellations since its issue are not known to it.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from events.checkin.codes import public_keys_from_jwks
from events.checkin.verifier import InvalidListError, check_offline, open_list

KEYS_FILE = "keys.json"


def list_file(folder: Path, event_id: str) -> Path:
    return folder / f"revocations-{event_id}.json"


def sync(url: str, event_id: str, token: str, folder: Path) -> str:
    base = url.rstrip("/")
    with httpx.Client(timeout=10) as client:
        keys = client.get(f"{base}/checkin/keys")
        keys.raise_for_status()
        staff = {"Authorization": f"Bearer {token}"}
        listed = client.get(f"{base}/events/{event_id}/checkin/revocations", headers=staff)
        listed.raise_for_status()
    public_keys = public_keys_from_jwks(keys.json())
    fresh = open_list(listed.json(), public_keys)  # refuses a forged list before anything is stored
    if fresh.event_id != event_id:
        raise InvalidListError("the revocation list is for another event")
    folder.mkdir(parents=True, exist_ok=True)
    target = list_file(folder, event_id)
    if target.exists():
        held = open_list(json.loads(target.read_text()), public_keys)
        if held.version > fresh.version:  # never go back to an older list
            return f"kept version {held.version} (the service sent {fresh.version})"
    _write(folder / KEYS_FILE, keys.json())
    _write(target, listed.json())
    return f"synced version {fresh.version}: {len(fresh.revoked)} revoked, event {fresh.event_status}"


def _write(path: Path, document: Any) -> None:
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps(document))
    scratch.replace(path)  # a door that loses power mid-sync keeps the previous file whole


def check(event_id: str, folder: Path, codes: list[str], max_age: timedelta) -> int:
    try:
        public_keys = public_keys_from_jwks(json.loads((folder / KEYS_FILE).read_text()))
        revocations = open_list(json.loads(list_file(folder, event_id).read_text()), public_keys)
    except (OSError, ValueError, InvalidListError) as exc:
        print(f"no usable keys or revocation list in {folder}: {exc}; run sync first", file=sys.stderr)
        return 2
    age = datetime.now(UTC) - revocations.issued_at
    if age > max_age:
        print(f"warning: the revocation list is {age} old; cancellations since are not known", file=sys.stderr)
    refused = 0
    for code in codes:
        try:
            verdict = check_offline(code, event_id, public_keys, revocations)
        except InvalidListError as exc:
            print(f"refused: {exc}")
            return 2
        print(f"valid {verdict.registration_id}" if verdict.valid else f"refused: {verdict.reason}")
        refused += not verdict.valid
    return 1 if refused else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m events.checkin.verify", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sync", help="fetch the public keys and the event's signed revocation list")
    s.add_argument("--url", required=True, help="the events service, e.g. http://127.0.0.1:8104")
    s.add_argument("--event", required=True)
    s.add_argument("--token", required=True, help="a staff bearer token that may check in at the event")
    s.add_argument("--dir", required=True, type=Path)
    c = sub.add_parser("check", help="verify codes offline with what the last sync stored")
    c.add_argument("--event", required=True)
    c.add_argument("--dir", required=True, type=Path)
    c.add_argument("--max-age", type=float, default=15.0, help="minutes before the list is called stale")
    c.add_argument("codes", nargs="*", help="codes (default: one a line on stdin)")
    args = parser.parse_args(argv)
    event_id = str(args.event).lower()
    if args.command == "sync":
        try:
            print(sync(args.url, event_id, args.token, args.dir))
        except (httpx.HTTPError, InvalidListError, ValueError) as exc:
            print(f"sync failed: {exc}", file=sys.stderr)
            return 2
        return 0
    codes = args.codes or [line.strip() for line in sys.stdin if line.strip()]
    return check(event_id, args.dir, codes, timedelta(minutes=args.max_age))


if __name__ == "__main__":
    sys.exit(main())
