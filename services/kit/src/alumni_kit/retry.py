"""Retrying transient failures with capped exponential back-off."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from alumni_kit.errors import is_transient
from alumni_kit.metrics import KitMetrics

log = logging.getLogger(__name__)
T = TypeVar("T")


async def retry_transient(
    operation: Callable[[], Awaitable[T]], metrics: KitMetrics, name: str, max_delay: float = 5.0
) -> T:
    """Run `operation` until it succeeds or fails for a reason that is not transient.

    A database or broker outage only delays processing: the same input is tried
    again, and it is never dead-lettered for it.
    """
    delay = 0.05
    while True:
        try:
            return await operation()
        except Exception as exc:
            if not is_transient(exc):
                raise
            metrics.transient_retries.labels(name).inc()
            log.warning("%s: transient %s; retrying in %.2fs", name, type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
