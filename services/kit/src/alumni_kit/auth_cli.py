"""`alumni-token`: issue staff tokens and member links for local use and operators.

alumni-token staff --role ak --faculty HH --subject kari.nordmann --ttl-hours 8
alumni-token member-link --member <id> --purpose login
alumni-token operator --subject ops-1234 --ttl-hours 1   # for `alumni replay --open`
"""

from __future__ import annotations

import argparse
import secrets
import sys

from alumni_kit.auth import (
    FACULTIES,
    ROLES,
    TokenSigner,
    issue_member_link,
    issue_operator_token,
    issue_staff_token,
    parse_keys,
)
from alumni_kit.settings import ServiceSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="alumni-token", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    staff = sub.add_parser("staff", help="a staff bearer token")
    staff.add_argument("--role", choices=ROLES, required=True)
    staff.add_argument("--faculty", choices=FACULTIES, help="required for ak and at")
    staff.add_argument("--subject", default="local-operator")
    staff.add_argument("--ttl-hours", type=float, default=8)
    link = sub.add_parser("member-link", help="a signed member link token")
    link.add_argument("--member", required=True)
    link.add_argument("--purpose", required=True)
    link.add_argument("--ttl-hours", type=float, default=24)
    operator = sub.add_parser("operator", help="an operator's token for opening sealed fields (alumni replay --open)")
    operator.add_argument(
        "--subject", required=True, help="the operator's staff id (named in MEMBERSHIP_KEY_OPERATORS)"
    )
    operator.add_argument("--ttl-hours", type=float, default=1)
    args = parser.parse_args(argv)

    signer = TokenSigner(parse_keys(ServiceSettings().signing_keys.get_secret_value()))
    ttl = int(args.ttl_hours * 3600)
    try:
        if args.command == "staff":
            token = issue_staff_token(signer, args.subject, args.role, args.faculty, ttl)
        elif args.command == "operator":
            token = issue_operator_token(signer, args.subject, ttl)
        else:
            token = issue_member_link(signer, args.member, args.purpose, ttl, secrets.token_urlsafe(12))
    except ValueError as exc:
        print(f"alumni-token: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
