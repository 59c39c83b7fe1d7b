"""Campaign rendering from the event loop's side: every body is rendered in a child
process (render_worker.py) under a time and memory budget, so no template can freeze
the mailer, take its memory, or fail anywhere but in its own campaign.

A `Renderer` keeps one worker and sends it one campaign at a time; a worker that does
not answer within the budget (plus a grace period for the process itself) is killed
and the campaign refused, and the next request starts a new worker. Rendering is rare
(a campaign is checked when it is requested and rendered once when it starts
sending), so one worker per use is plenty: the mailer has one for the intake (staff
API, `campaigns` topic) and one for its sender, so that checking requests never
waits on sending, or sending on a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from dataclasses import asdict, dataclass
from email.headerregistry import Address
from typing import Any

from mailer import compose
from mailer.bodies import TemplateProblemError

log = logging.getLogger(__name__)
# The process's own share of the wait (scheduling, pipes) on top of the template's budget.
_GRACE_SECONDS = 1.0
# Starting Python and importing Jinja and markdown-it; on a loaded machine a few seconds.
_START_SECONDS = 30.0


class RendererUnavailableError(OSError):
    """The worker could not be started: the mailer's trouble, not the campaign's. An OSError,
    so a consumer retries it like any other unavailable resource (alumni_kit.errors)."""


@dataclass(frozen=True)
class RenderLimits:
    seconds: float = 2.0
    max_bytes: int = 2 * 1024 * 1024
    memory_mib: int = 256


class Renderer:
    def __init__(self, limits: RenderLimits, sender: Address, name: str = "render") -> None:
        self._limits, self._sender, self._name = limits, sender, name
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    @property
    def limits(self) -> RenderLimits:
        return self._limits

    @property
    def worker_pid(self) -> int | None:
        """The running worker's process id (None before the first render and after a kill)."""
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    async def prepare(self, campaign: compose.Campaign) -> compose.Prepared:
        """The campaign rendered once (and checked for a synthetic recipient), ready to be
        finished per recipient; raises TemplateProblemError saying why it cannot be."""
        request = {
            "campaign": asdict(campaign),
            "sender": [self._sender.display_name, self._sender.addr_spec],
            "max_bytes": self._limits.max_bytes,
            "seconds": self._limits.seconds,
        }
        reply = await self._ask(json.dumps(request, ensure_ascii=False).encode() + b"\n")
        if "error" in reply:
            raise TemplateProblemError(reply["error"]["line"], reply["error"]["message"])
        return compose.Prepared(compose.PreparedParts.from_dict(reply["parts"]))

    async def _ask(self, line: bytes) -> dict[str, Any]:
        async with self._lock:
            proc = await self._started()
            assert proc.stdin is not None
            assert proc.stdout is not None
            try:
                proc.stdin.write(line)
                await proc.stdin.drain()
                answer = await asyncio.wait_for(proc.stdout.readline(), self._limits.seconds + _GRACE_SECONDS)
            except TimeoutError:
                await self._stop_worker()
                raise TemplateProblemError(None, f"rendering takes longer than {self._limits.seconds:g} s") from None
            except (ConnectionError, ValueError):  # the worker went away under us, or answered too much
                answer = b""
            except BaseException:  # cancelled mid-question: its answer must not become the next one's
                self._kill_now()
                raise
            if not answer:
                # Killed by its CPU limit, or crashed in C: the template took it down.
                await self._stop_worker()
                raise TemplateProblemError(None, "rendering exceeded the renderer's time or memory budget")
            reply: dict[str, Any] = json.loads(answer)
            return reply

    async def _started(self) -> asyncio.subprocess.Process:
        if self._proc is not None and self._proc.returncode is None:
            return self._proc
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "mailer.render_worker",
                str(self._limits.memory_mib),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                # An answer holds the text and HTML of one campaign (JSON-escaped).
                limit=4 * self._limits.max_bytes + 1024 * 1024,
            )
            assert self._proc.stdout is not None
            ready = await asyncio.wait_for(self._proc.stdout.readline(), _START_SECONDS)
        except (OSError, TimeoutError) as exc:
            await self._stop_worker()
            raise RendererUnavailableError(f"the {self._name} worker could not be started ({exc!r})") from None
        if not ready.startswith(b'{"ready"'):
            await self._stop_worker()
            raise RendererUnavailableError(f"the {self._name} worker exited at start-up")
        log.info("%s worker started (pid %d)", self._name, self._proc.pid)
        return self._proc

    def _kill_now(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    async def _stop_worker(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()

    async def close(self) -> None:
        async with self._lock:
            proc, self._proc = self._proc, None
            if proc is None:
                return
            assert proc.stdin is not None
            proc.stdin.close()  # the worker's loop ends; kill only if it does not
            try:
                await asyncio.wait_for(proc.wait(), 2.0)
            except TimeoutError:
                self._proc = proc
                await self._stop_worker()
