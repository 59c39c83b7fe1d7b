"""Bounces: signed VERP return paths, RFC 3464 DSN parsing and the SMTP listener that receives them.

Every message goes out with its own return path, `bounce+<delivery>.<tag>@<domain>`, where
`delivery` is the mailer's opaque reference ("c123": campaign delivery 123) and `tag` an HMAC of
it. A bounce therefore names the delivery it is about even when the DSN itself is mangled, and
nobody can make us suppress an address by sending a forged DSN to a guessed return path. The
address holds no personal data.

DSNs come from the internet: the parser never raises, and anything that is not a delivery status
report (an out-of-office reply, spam, garbage) is simply "no recipients".
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import quopri
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message
from email.parser import BytesHeaderParser
from typing import Literal, get_args

from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger(__name__)

TAG_CHARS = 10  # 40 bits of HMAC: guessing one valid return path takes ~10^12 tries
MAX_BOUNCE_BYTES = 1024 * 1024
DIAGNOSTIC_CHARS = 300
# Domain separation: the same secret can never produce a tag that is valid in another context.
_MAC_CONTEXT = b"alumni-verp-v1:"
_DELIVERY = re.compile(r"[a-z0-9]{1,64}")

Action = Literal["failed", "delayed", "delivered", "relayed", "expanded"]
_ACTION_NAMES: dict[str, Action] = {name: name for name in get_args(Action)}
# Action implied by a status class, for the DSNs that leave the (required) Action field out.
_ACTION_OF_CLASS: dict[str, Action] = {"5": "failed", "4": "delayed", "2": "delivered"}
_STATUS_FIELD = re.compile(r"\s*([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
# An enhanced code inside free text; the look-arounds keep "10.5.1.1" (an IP address) from matching.
_STATUS_IN_TEXT = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?!\.?\d)")
_REPLY_CODE = re.compile(r"(?:^|said:)\s*([245])\d\d(?![\d.])")
_MESSAGE_ID = re.compile(r"<[^<>\s@]+@[^<>\s]+>")
_STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")
_RETURNED_TYPES = ("text/rfc822-headers", "message/rfc822", "message/global", "message/global-headers")


def _tag(delivery: str, key: bytes) -> str:
    return hmac.new(key, _MAC_CONTEXT + delivery.encode(), hashlib.sha256).hexdigest()[:TAG_CHARS]


def return_path(delivery: str, key: bytes, local: str, domain: str) -> str:
    """`bounce+c123.3f9a1b2c4d@bounces.alumni.usn.no` for delivery "c123"."""
    if not _DELIVERY.fullmatch(delivery):
        raise ValueError("a delivery reference is 1-64 characters of [a-z0-9]")
    return f"{local}+{delivery}.{_tag(delivery, key)}@{domain.lower()}"


def delivery_of(address: str, key: bytes, local: str, domain: str) -> str | None:
    """The delivery reference of a return path we signed; None for anything else."""
    # Lower-cased whole: references and tags are lower-case, and some relays fold the local part.
    mailbox, _, at_domain = address.strip().strip("<>").lower().rpartition("@")
    prefix = f"{local.lower()}+"
    if at_domain != domain.lower() or not mailbox.startswith(prefix):
        return None
    delivery, _, tag = mailbox[len(prefix) :].rpartition(".")
    if not _DELIVERY.fullmatch(delivery) or len(tag) != TAG_CHARS:
        return None
    return delivery if hmac.compare_digest(tag, _tag(delivery, key)) else None


@dataclass(frozen=True)
class DsnRecipient:
    action: Action
    status: str  # RFC 3463 enhanced code, "5.1.1"
    final_recipient: str | None
    diagnostic: str | None  # at most DIAGNOSTIC_CHARS, whitespace collapsed

    @property
    def hard(self) -> bool:
        """A permanent failure: the address should be suppressed."""
        return self.action == "failed" and self.status.startswith("5")

    @property
    def soft(self) -> bool:
        """A transient problem (mailbox full, delayed): counts toward a threshold."""
        return self.status.startswith("4") or self.action == "delayed"


def parse_dsn(raw: bytes) -> list[DsnRecipient]:
    """The per-recipient reports of an RFC 3464 DSN; [] for anything else. Never raises."""
    return read_bounce(raw)[0]


def original_message_id(raw: bytes) -> str | None:
    """The Message-ID of the returned original (text/rfc822-headers or message/rfc822), if included."""
    return read_bounce(raw)[1]


def read_bounce(raw: bytes) -> tuple[list[DsnRecipient], str | None]:
    """`parse_dsn` and `original_message_id` in one parse. Never raises."""
    try:
        # compat32, not policy.default: its lazy, plain-string headers parse hostile input (thousands
        # of MIME parts in a megabyte) in about a second, where policy.default takes fifteen.
        message = message_from_bytes(raw, policy=policy.compat32)
        return _recipients(message), _message_id(message)
    except Exception as error:  # any input from the internet, including RecursionError on absurd nesting
        # The type only: an exception's text may quote the message, and with it addresses.
        log.warning("unparseable bounce message ignored (%s)", type(error).__name__)
        return [], None


def _recipients(message: Message) -> list[DsnRecipient]:
    blocks = [_fields(block) for part in _parts(message) if _type(part) in _STATUS_TYPES for block in _blocks(part)]
    return [recipient for recipient in map(_recipient, blocks) if recipient is not None]


def _message_id(message: Message) -> str | None:
    for part in _parts(message):
        if _type(part) in _RETURNED_TYPES and (found := _MESSAGE_ID.search(_returned_message_id(part))):
            return found.group()
    return None


def _type(part: Message) -> str:
    return part.get_content_type()


def _parts(message: Message) -> Iterator[Message]:
    """The message's MIME parts, without descending into a returned original (it is not the report)."""
    yield message
    payload = message.get_payload()
    if message.get_content_maintype() == "multipart" and isinstance(payload, list):
        for part in payload:
            if isinstance(part, Message):
                yield from _parts(part)


def _blocks(part: Message) -> list[str]:
    """The header blocks of a delivery-status part, as text.

    The stdlib splits `message/delivery-status` into a list of header-only messages, one per block,
    but ignores a base64 transfer encoding (one block with no headers and the encoded text as body),
    and parses `message/global-delivery-status` (RFC 6533) as a single message whose body holds
    the later blocks. Re-serialising what it built covers all three shapes.
    """
    payload = part.get_payload()
    items = payload if isinstance(payload, list) else [payload]
    text = "\n".join(_block_text(item) for item in items)
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding == "base64":
        data = re.sub(r"[^A-Za-z0-9+/]", "", text)
        text = base64.b64decode(data + "=" * (-len(data) % 4)).decode("utf-8", "replace")
    elif encoding == "quoted-printable":
        text = quopri.decodestring(text.encode("utf-8", "replace")).decode("utf-8", "replace")
    return re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n"))


def _block_text(item: object) -> str:
    if not isinstance(item, Message):
        return _unescape(str(item))
    # raw_items: the parser's own strings (folding kept), not compat32's Header objects for 8-bit values.
    fields = _unescape("".join(f"{name}: {value}\n" for name, value in item.raw_items()))
    body = item.get_payload(decode=True)  # bytes as received: without decode, 8-bit text turns into U+FFFD
    return f"{fields}\n{body.decode('utf-8', 'replace') if isinstance(body, bytes) else ''}"


def _unescape(text: str) -> str:
    """The parser keeps 8-bit bytes as lone surrogates; give them back as UTF-8 (SMTPUTF8 DSNs)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _fields(block: str) -> dict[str, str]:
    """RFC 822-style `Name: value` lines, continuation lines unfolded; names lower-cased."""
    fields: dict[str, str] = {}
    name = ""
    for line in block.split("\n"):
        if line[:1] in (" ", "\t") and name:
            fields[name] += " " + line.strip()
        elif ":" in line:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            fields[name] = value.strip()
    return fields


def _recipient(fields: dict[str, str]) -> DsnRecipient | None:
    diagnostic = " ".join(fields.get("diagnostic-code", "").split())[:DIAGNOSTIC_CHARS] or None
    status = _status(fields.get("status", ""), diagnostic or "")
    # Action is required, but missing or misspelt it is implied by the status class.
    action = _ACTION_NAMES.get(fields.get("action", "").lower().strip()) or _ACTION_OF_CLASS.get((status or "")[:1])
    if action is None:
        return None  # a per-message block, or nothing we can act on
    status = status or {"failed": "5.0.0", "delayed": "4.0.0"}.get(action, "2.0.0")
    recipient = fields.get("final-recipient") or fields.get("original-recipient")
    return DsnRecipient(action, status, _address(recipient), diagnostic)


def _status(field: str, diagnostic: str) -> str | None:
    """The Status field; failing that, the enhanced code, then the reply code, in the Diagnostic-Code."""
    if found := _STATUS_FIELD.match(field) or _STATUS_IN_TEXT.search(diagnostic):
        return found.group(1)
    reply = _REPLY_CODE.search(diagnostic.partition(";")[2] or diagnostic)
    return f"{reply.group(1)}.0.0" if reply else None


def _address(field: str | None) -> str | None:
    """`rfc822; kari@example.org` → `kari@example.org`."""
    if not field:
        return None
    address = field.partition(";")[2] if ";" in field else field
    return "".join(address.split()).strip("<>")[:320] or None


def _returned_message_id(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):  # message/rfc822 and friends: the parser built the original
        headers = payload[0] if payload and isinstance(payload[0], Message) else None
    else:  # text/rfc822-headers: text, possibly transfer-encoded
        data = part.get_payload(decode=True)
        headers = BytesHeaderParser(policy=policy.compat32).parsebytes(data) if isinstance(data, bytes) else None
    return str(headers.get("Message-ID", "")) if headers is not None else ""


OnBounce = Callable[[str, list[DsnRecipient], str | None], Awaitable[None]]


class BounceHandler:
    """aiosmtpd handler for the bounce address: accepts only return paths we signed.

    Serve it with the size limit on the SMTP server, which enforces it while reading, so a huge
    message is never held in memory: `loop.create_server(lambda: SMTP(handler,
    data_size_limit=MAX_BOUNCE_BYTES, hostname=...), host, port)` on the service's loop, or in a
    thread of its own (tests) `Controller(handler, hostname=host, port=port, data_size_limit=...)`.
    The callback runs on the server's loop: with a Controller that is the Controller's own loop,
    where a connection pool made on the service's loop cannot be used.

    `on_bounce(delivery, recipients, message_id)` is awaited once per accepted recipient, also
    with `recipients == []` when the message is no DSN (an auto-reply): the delivery is known, but
    nothing says it failed. If it raises, the whole message is answered 451 and the sending MTA
    retries it, so the callback must be idempotent: an earlier recipient may be seen again.
    """

    def __init__(self, key: bytes, local: str, domain: str, on_bounce: OnBounce) -> None:
        self._key = key
        self._local = local
        self._domain = domain
        self._on_bounce = on_bounce

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if delivery_of(address, self._key, self._local, self._domain) is None:
            log.info("refused a bounce to an unsigned address")  # the address itself is personal data
            return "550 5.1.1 no such bounce address"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        if len(raw) > MAX_BOUNCE_BYTES:  # only if the server was started without data_size_limit
            return "552 5.3.4 message too big"
        # In a thread: even a hostile megabyte parses in about a second, but not on the mailer's loop.
        recipients, message_id = await asyncio.to_thread(read_bounce, raw)
        deliveries = {delivery_of(rcpt, self._key, self._local, self._domain) for rcpt in envelope.rcpt_tos}
        for delivery in sorted(d for d in deliveries if d is not None):
            log.info("bounce for delivery %s: %s", delivery, [f"{r.action} {r.status}" for r in recipients])
            try:
                await self._on_bounce(delivery, recipients, message_id)
            except Exception as error:  # e.g. the database is down: the sender keeps the DSN and retries
                # The type only: a database error's text can quote the row, and with it an address.
                log.error("bounce for delivery %s not recorded (%s); sender will retry", delivery, type(error).__name__)
                return "451 4.3.0 try again later"
        return "250 OK"
