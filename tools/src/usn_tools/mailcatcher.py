"""A local SMTP server that keeps every message as an .eml file, for developers to read.

    python -m usn_tools.mailcatcher --port 2525 --dir .run/mail

`scripts/platform` runs it as the mailer's relay (MAILER_SMTP_PORT). It accepts
every message for every recipient and delivers nothing: each message goes to
`<dir>/<UTC time>-<random>.eml`, as received, after a `Return-Path` (the envelope
sender, the mailer's VERP bounce address) and one `Delivered-To` per envelope
recipient, as a local mailbox would add them. Open the files with any mail
program, or read them as text.

It prints one line per message: arrival time, file name, Message-ID, the
subject's length and the size in bytes. Never the addresses, names or subject:
those are personal data and stay in the files (keep the folder private).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import secrets
import signal
import sys
from datetime import UTC, datetime
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

_PRINTABLE = re.compile(r"[^\x21-\x7e]")


class MailDir:
    """The aiosmtpd handler: each message's DATA becomes one .eml file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook
        raw = envelope.original_content or b""
        now = datetime.now(UTC)
        path = self.store(now, _envelope_headers(envelope) + raw)
        self.count += 1
        print(summary(now, path.name, raw), flush=True)
        return "250 OK: kept as " + path.name

    def store(self, now: datetime, data: bytes) -> Path:
        """Written beside its final name and renamed: a reader never sees half a message."""
        name = f"{now:%Y%m%dT%H%M%S.%fZ}-{secrets.token_hex(4)}.eml"
        final, partial = self.folder / name, self.folder / f".{name}.part"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # personal data: owner only
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(partial, final)
        return final


def _envelope_headers(envelope: Envelope) -> bytes:
    lines = [f"Return-Path: <{envelope.mail_from or ''}>"]
    lines += [f"Delivered-To: {address}" for address in envelope.rcpt_tos]
    return "".join(f"{line}\r\n" for line in lines).encode("utf-8", "surrogateescape")


def summary(now: datetime, file_name: str, raw: bytes) -> str:
    """One log line with nothing personal: time, file, Message-ID, subject length, size."""
    headers = BytesHeaderParser(policy=policy.default).parsebytes(raw)
    message_id = _PRINTABLE.sub("?", str(headers.get("Message-ID", "-")).strip())[:200] or "-"
    subject = str(headers.get("Subject", ""))  # decoded: its length in characters, not in encoded words
    cells = [now.isoformat(timespec="milliseconds"), file_name, message_id, f"subject={len(subject)}ch", f"{len(raw)}B"]
    return "\t".join(cells)


async def serve(host: str, port: int, folder: Path) -> int:
    handler = MailDir(folder)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await loop.create_server(lambda: SMTP(handler, hostname="mailcatcher.local"), host=host, port=port)
    print(f"mailcatcher on {host}:{port}, keeping messages in {folder}", flush=True)
    await stop.wait()
    server.close()
    # Clients keep pooled connections open; from Python 3.12 wait_closed waits for them.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.wait_closed(), timeout=2)
    print(f"mailcatcher stopped after {handler.count} messages", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="usn_tools.mailcatcher", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=2525, help="SMTP port (default 2525, MAILER_SMTP_PORT)")
    parser.add_argument("--dir", type=Path, default=Path(".run/mail"), help="where the .eml files go")
    args = parser.parse_args(argv)
    args.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        return asyncio.run(serve(args.host, args.port, args.dir))
    except OSError as exc:
        print(f"mailcatcher cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
