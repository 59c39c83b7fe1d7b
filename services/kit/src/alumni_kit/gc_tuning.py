"""Garbage-collector settings for batch work.

A consumer batch allocates tens of thousands of short-lived objects (parsed
events, models, rows). With CPython's default threshold (700 allocations) the
cyclic collector runs hundreds of times per batch and walks every long-lived
object of the process each time it reaches the older generations. Almost all
of our garbage is freed by reference counting anyway, so collecting far less
often costs little memory and, measured on the membership backfill, raises
throughput by about 40 %. `gc.freeze()` moves everything alive after start-up
(modules, schemas, pools) out of the collector's view for good.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 50_000


def tune_gc_for_batches() -> None:
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, 50, 100)
