"""A periodic job as a `running` part of a service (alumni_kit.app): one round now, then
one every so many seconds, until the service stops.

A round that fails is logged (where it failed, never the data) and the next round tries
again: a database outage must not end a job that nothing would restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from alumni_kit.app import Part
from alumni_kit.logs import where_it_failed

log = logging.getLogger(__name__)


def periodic(
    name: str,
    every_seconds: float,
    one_round: Callable[[], Awaitable[object]],
    *,
    on_failure: Callable[[], object] | None = None,
) -> Part:
    """`name` names the task and the log line; `on_failure` counts a failed round (a metric)."""

    async def forever() -> None:
        while True:
            try:
                await one_round()
            except Exception as exc:  # the next round retries; see the module's docstring
                if on_failure is not None:
                    on_failure()
                log.warning("%s failed (%s); retrying next round", name, where_it_failed(exc))
            await asyncio.sleep(every_seconds)

    @contextlib.asynccontextmanager
    async def running() -> AsyncIterator[None]:
        task = asyncio.create_task(forever(), name=name)
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return running
