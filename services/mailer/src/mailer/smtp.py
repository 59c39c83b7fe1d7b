"""A pool of SMTP connections to the relay, and what each answer means.

Every send ends in exactly one of: accepted (returns), `TransientRejectionError`
(4xx: retry later), `PermanentRejectionError` (5xx: a bounce), `RelayUnavailableError`
(no connection, or it broke before DATA: nothing was accepted, safe to retry), or
`UncertainOutcomeError` (the connection broke during DATA: the relay may or may not
have accepted it — never retried automatically, see docs/mailer.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time

import aiosmtplib

from mailer.settings import MailerSettings

log = logging.getLogger(__name__)
# Parsing each address (email.utils) cost more than anything else per SMTP command.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+", re.ASCII)
_BROKEN = (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPConnectError, OSError)


class RelayUnavailableError(Exception):
    """Nothing was accepted: the relay is down or the connection broke before DATA."""


class UncertainOutcomeError(Exception):
    """The connection broke while the message was being transferred."""


class RejectionError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code, self.message = code, message[:300]


class TransientRejectionError(RejectionError):
    pass


class PermanentRejectionError(RejectionError):
    pass


def _rejection(exc: aiosmtplib.SMTPResponseException) -> RejectionError:
    kind = TransientRejectionError if 400 <= exc.code < 500 else PermanentRejectionError
    return kind(exc.code, exc.message)


class RateLimiter:
    """At most `per_second` sends a second over all connections (0: no limit)."""

    def __init__(self, per_second: float) -> None:
        self._interval = 1 / per_second if per_second > 0 else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self._interval:
            return
        async with self._lock:
            now = time.monotonic()
            self._next = max(self._next, now)
            delay, self._next = self._next - now, self._next + self._interval
        if delay > 0:
            await asyncio.sleep(delay)


class SmtpPool:
    def __init__(self, settings: MailerSettings) -> None:
        self._settings = settings
        self._idle: asyncio.Queue[aiosmtplib.SMTP | None] = asyncio.Queue()
        for _ in range(settings.smtp_connections):
            self._idle.put_nowait(None)  # connected on first use
        self._rate = RateLimiter(settings.rate_limit_per_second)

    @property
    def size(self) -> int:
        return self._settings.smtp_connections

    async def send(self, envelope_from: str, recipient: str, data: bytes) -> None:
        await self._rate.wait()
        client = await self._idle.get()
        try:
            client = await self._connected(client)
            await self._transaction(client, envelope_from, recipient, data)
        except (RelayUnavailableError, UncertainOutcomeError):
            client = None  # a broken connection is replaced on next use
            raise
        finally:
            self._idle.put_nowait(client)

    async def _connected(self, client: aiosmtplib.SMTP | None) -> aiosmtplib.SMTP:
        if client is not None and client.is_connected:
            return client
        s = self._settings
        fresh = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=s.smtp_timeout_seconds,
            start_tls=s.smtp_starttls,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
        )
        try:
            await fresh.connect()
            await _greet(fresh)
        except (*_BROKEN, aiosmtplib.SMTPResponseException) as exc:
            raise RelayUnavailableError(f"cannot connect to the SMTP relay: {type(exc).__name__}") from None
        return fresh

    async def _transaction(self, client: aiosmtplib.SMTP, envelope_from: str, recipient: str, data: bytes) -> None:
        try:
            await _envelope(client, b"MAIL", b"FROM:", envelope_from)
            await _envelope(client, b"RCPT", b"TO:", recipient)
        except aiosmtplib.SMTPResponseException as exc:
            await _reset(client)
            raise _rejection(exc) from None
        except _BROKEN as exc:
            raise RelayUnavailableError(f"connection lost before the message: {type(exc).__name__}") from None
        try:
            await client.data(data)
        except aiosmtplib.SMTPResponseException as exc:
            await _reset(client)
            raise _rejection(exc) from None
        except _BROKEN as exc:
            raise UncertainOutcomeError(f"connection lost during DATA: {type(exc).__name__}") from None

    async def close(self) -> None:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client is not None and client.is_connected:
                with contextlib.suppress(Exception):
                    await client.quit()


async def _greet(client: aiosmtplib.SMTP) -> None:
    """EHLO (HELO if refused) once per connection, so that the transactions need not ask each time."""
    if client.is_ehlo_or_helo_needed:
        try:
            await client.ehlo()
        except aiosmtplib.SMTPHeloError:
            await client.helo()


async def _envelope(client: aiosmtplib.SMTP, verb: bytes, prefix: bytes, address: str) -> None:
    """MAIL FROM / RCPT TO. A plain address (ours, and members' as a rule) goes out as it is; it
    cannot carry anything but an address. Anything else takes aiosmtplib's parsing and checks."""
    if not _PLAIN_ADDRESS.fullmatch(address):
        await (client.mail(address) if verb == b"MAIL" else client.rcpt(address))
        return
    response = await client.execute_command(verb, prefix + b"<" + address.encode("ascii") + b">")
    if response.code not in (250, 251):
        raise aiosmtplib.SMTPResponseException(response.code, response.message)


async def _reset(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(Exception):
        await client.rset()
