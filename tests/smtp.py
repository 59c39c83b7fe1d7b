"""A real SMTP server for the tests (aiosmtpd in its own thread), and a remote MTA that bounces.

`SmtpSink` records what the mailer delivers and can misbehave on request: transient failures on
DATA, permanently refused recipients, slowness, and going down and up again on the same port.
`send_dsn` plays the receiving MTA that bounces a newsletter back to its VERP return path.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formatdate, getaddresses
from types import TracebackType

import aiosmtplib
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session, syntax

from tests.stack import free_port


@dataclass(frozen=True)
class Received:
    sender: str  # MAIL FROM: the return path
    recipients: tuple[str, ...]  # RCPT TO
    raw: bytes
    parsed: EmailMessage
    arrived: float  # time.monotonic()


class SmtpSink:
    """An SMTP server on 127.0.0.1 that accepts everything unless told otherwise.

    For the benchmark: `keep_parsed=False` keeps no messages, only `count()` and
    `recipient_counts()`, so 23,000 newsletters cost neither memory nor parsing time; `fast=True`
    reads DATA in bulk (see `_BulkDataSMTP`), so the sink is not what limits the throughput measured.
    """

    def __init__(self, keep_parsed: bool = True, port: int | None = None, fast: bool = False) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._keep = keep_parsed
        self._fast = fast
        self._lock = threading.Lock()  # the handler runs in the server's thread, the accessors in the test's
        self._received: list[Received] = []
        self._count = 0
        self._per_recipient: Counter[str] = Counter()
        self._failures: deque[str] = deque()
        self._rejected: dict[str, str] = {}
        self._delay = 0.0
        self._controller: Controller | None = None

    def __enter__(self) -> SmtpSink:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        """Listen (again) on the same port; what was received before is kept."""
        # A stopped Controller has closed its event loop: each start needs a new one.
        kind = _BulkDataController if self._fast else Controller
        self._controller = kind(self, hostname=self.host, port=self.port, server_hostname="sink.test")
        self._controller.start()

    def stop(self) -> None:
        """Go down: the port is closed and open connections are dropped."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    # Failure injection -------------------------------------------------------------------------

    def fail_next(self, n: int, code: int = 451, text: str = "4.7.1 try again later") -> None:
        """The next `n` DATA commands are answered `code text` and nothing is recorded."""
        with self._lock:
            self._failures.extend([f"{code} {text}"] * n)

    def reject(self, address: str, code: int = 550, text: str = "5.1.1 user unknown") -> None:
        """RCPT TO `address` is refused from now on."""
        with self._lock:
            self._rejected[address.lower()] = f"{code} {text}"

    def slow(self, seconds: float) -> None:
        """Wait `seconds` before answering each DATA command."""
        with self._lock:
            self._delay = seconds

    # What arrived ------------------------------------------------------------------------------

    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def count(self) -> int:
        with self._lock:
            return self._count

    def recipient_counts(self) -> Counter[str]:
        """Messages per recipient address (lower-cased): who got mail, and who got it twice."""
        with self._lock:
            return Counter(self._per_recipient)

    async def wait_for(self, count: int, timeout: float) -> list[Received]:
        """The messages once at least `count` arrived (with keep_parsed=False: [] once counted)."""
        deadline = time.monotonic() + timeout
        while self.count() < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.count()} of {count} messages arrived within {timeout}s")
            await asyncio.sleep(0.05)
        return self.messages()

    # aiosmtpd hooks, run in the server's thread ------------------------------------------------

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        with self._lock:
            refusal = self._rejected.get(address.lower())
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        with self._lock:
            delay = self._delay
        if delay:
            await asyncio.sleep(delay)
        with self._lock:
            if self._failures:
                return self._failures.popleft()
        self._record(envelope)
        return "250 OK"

    def _record(self, envelope: Envelope) -> None:
        raw = envelope.original_content or b""
        received = None
        if self._keep:
            parsed = BytesParser(policy=policy.default).parsebytes(raw)
            assert isinstance(parsed, EmailMessage)
            received = Received(envelope.mail_from or "", tuple(envelope.rcpt_tos), raw, parsed, time.monotonic())
        with self._lock:
            self._count += 1
            self._per_recipient.update(address.lower() for address in envelope.rcpt_tos)
            if received is not None:
                self._received.append(received)


class _BulkDataSMTP(SMTP):
    """aiosmtpd with DATA read in 64 KiB chunks instead of line by line.

    aiosmtpd spends ~1.4 ms of CPU per 8 KB message, most of it in its per-line loop; this reads
    the same bytes in ~0.8 ms, so one sink thread takes ~900 instead of ~600 messages/s. It skips
    the line-length and size checks, so the functional tests keep the stock server. Reading past
    the terminator is safe: the server does not offer PIPELINING, so the client waits for our reply.
    """

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802 - aiosmtpd's command dispatch
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.envelope or not self.envelope.rcpt_tos or arg:
            await self.push("501 Syntax: DATA" if arg else "503 Error: need RCPT command")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        data = bytearray(b"\r\n")  # a leading CRLF makes a stuffed dot on the first line look like any other
        while not data.endswith(b"\r\n.\r\n"):
            chunk = await self._reader.read(65536)
            if not chunk:
                return
            data += chunk
        self.envelope.content = self.envelope.original_content = bytes(data[2:-3]).replace(b"\r\n..", b"\r\n.")
        status = await self._call_handler_hook("DATA")
        self.envelope = self._create_envelope()  # what aiosmtpd's own DATA does after the hook
        await self.push(status)


class _BulkDataController(Controller):
    def factory(self) -> SMTP:
        return _BulkDataSMTP(self.handler, **self.SMTP_kwargs)


# The remote MTA bouncing a newsletter --------------------------------------------------------


def build_dsn(
    to: str,
    original: Received | EmailMessage,
    status: str = "5.1.1",
    action: str = "failed",
    diagnostic: str = "smtp; 550 5.1.1 <addr>... User unknown",
) -> bytes:
    """A Postfix-style RFC 3464 report on `original`, addressed to its return path `to`.

    `<addr>` in `diagnostic` stands for the failed recipient, as a real MTA quotes it.
    """
    recipient = _recipient_of(original)
    mta = f"mx.{recipient.rpartition('@')[2] or 'example.org'}"
    boundary = f"{uuid.uuid4().hex}/{mta}"
    diagnostic = diagnostic.replace("<addr>", f"<{recipient}>")
    subject = {"failed": "Undelivered Mail Returned to Sender", "delayed": "Delayed Mail (still being retried)"}
    lines = [
        f"Date: {formatdate(localtime=True)}",
        f"From: MAILER-DAEMON@{mta} (Mail Delivery System)",
        f"Subject: {subject.get(action, 'Successful Mail Delivery Report')}",
        f"To: {to}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        "Content-Type: multipart/report; report-type=delivery-status;",
        f'\tboundary="{boundary}"',
        "Content-Transfer-Encoding: 8bit",
        f"Message-Id: <{uuid.uuid4().hex}@{mta}>",
        "",
        "This is a MIME-encapsulated message.",
        "",
        f"--{boundary}",
        "Content-Description: Notification",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        f"This is the mail system at host {mta}.",
        "",
        "I'm sorry to have to inform you that your message could not",
        "be delivered to one or more recipients. It's attached below.",
        "",
        "                   The mail system",
        "",
        f"<{recipient}>: host {mta}[192.0.2.25] said: {diagnostic.partition(';')[2].strip()}",
        "",
        f"--{boundary}",
        "Content-Description: Delivery report",
        "Content-Type: message/delivery-status",
        "",
        f"Reporting-MTA: dns; {mta}",
        "X-Postfix-Queue-ID: 4XyZ1b2c3dz9",
        f"X-Postfix-Sender: rfc822; {to}",
        f"Arrival-Date: {formatdate(localtime=True)}",
        "",
        f"Final-Recipient: rfc822; {recipient}",
        f"Original-Recipient: rfc822;{recipient}",
        f"Action: {action}",
        f"Status: {status}",
        f"Remote-MTA: dns; {mta}",
        f"Diagnostic-Code: {diagnostic}",
        "",
        f"--{boundary}",
        "Content-Description: Undelivered Message Headers",
        "Content-Type: text/rfc822-headers",
        "Content-Transfer-Encoding: 8bit",
        "",
    ]
    return "\r\n".join(lines).encode() + b"\r\n" + _headers_of(original) + f"\r\n\r\n--{boundary}--\r\n".encode()


async def send_dsn(
    host: str,
    port: int,
    to: str,
    original: Received | EmailMessage,
    status: str = "5.1.1",
    action: str = "failed",
    diagnostic: str = "smtp; 550 5.1.1 <addr>... User unknown",
) -> None:
    """Bounce `original` to its return path `to`, from the null sender as MTAs do (MAIL FROM:<>)."""
    # aiosmtplib.send refuses an empty sender for raw messages; the client's sendmail does not.
    async with aiosmtplib.SMTP(hostname=host, port=port) as client:
        await client.sendmail("", [to], build_dsn(to, original, status, action, diagnostic))


def _recipient_of(original: Received | EmailMessage) -> str:
    if isinstance(original, Received) and original.recipients:
        return original.recipients[0]
    message = original.parsed if isinstance(original, Received) else original
    return getaddresses([str(message.get("To", ""))])[0][1]


def _headers_of(original: Received | EmailMessage) -> bytes:
    raw = original.raw if isinstance(original, Received) else original.as_bytes(policy=policy.SMTP)
    raw = raw.replace(b"\r\n", b"\n")
    return raw.partition(b"\n\n")[0].replace(b"\n", b"\r\n")
